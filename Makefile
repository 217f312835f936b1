# Every target sets itself up: a virtual environment in .venv, made on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: run test bench capacity-large setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## run: capacity of the coupled and decoupled models at d = 8, 12, 16 (8 seeds each)
run: $(STAMP)
	$(BIN)/feasibility capacity --model coupled,decoupled --d 8,12,16 --seeds 8 \
		--jobs $(JOBS) --out results/capacity.csv

## bench: the project against the dense cvxpy baseline, side by side (writes BENCHMARKS.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

## capacity-large: coupled and decoupled capacity, d = 16..48 (8 seeds) and 64 (4 seeds)
capacity-large: $(STAMP)
	$(BIN)/feasibility capacity --model coupled,decoupled --d 16,24,32,48 --seeds 8 \
		--jobs $(JOBS) --out results/capacity-large.csv
	$(BIN)/feasibility capacity --model coupled,decoupled --d 64 --seeds 4 \
		--jobs $(JOBS) --out results/capacity-large.csv

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
