# Every target sets itself up: a virtual environment in .venv, made on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: run test bench setup clean

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

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
