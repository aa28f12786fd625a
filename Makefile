# Every target sets up what it needs, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
WORKERS ?= 2

.PHONY: install demo test test-fast lint bench bench-estimates bench-estimates-unseen bench-estimates-scale bench-dedup bench-classifier classifier classifier-shift classifier-ova demo-sample notebooks clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,notebooks]'
	touch $@

demo: install
	$(VENV)/bin/analyzer run $(DATA)/corpus/fineweb $(DATA)/corpus/dolma --out runs/demo --workers $(WORKERS)
	$(VENV)/bin/analyzer query runs/demo --sql "select domain, docs, round(token_share, 4) as share, \
		round(token_share_lo, 4) as lo, round(token_share_hi, 4) as hi, round(token_share_raw, 4) as raw, \
		round(dedup_token_share, 4) as dedup from domain_shares"

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check analyzer tests bench notebooks
	$(VENV)/bin/mypy analyzer

bench: install
	$(PY) bench/run_bench.py --out bench/results/bench.json

# the dedup stage on 1 M generated documents: time and peak memory (docs/dedup.md)
bench-dedup: install
	$(PY) bench/dedup_scale.py --out bench/results/dedup_scale.json

# cross-fitted accuracy of the share estimates (needs `make demo` first; trains two fold models)
bench-estimates: install
	$(PY) bench/estimate_accuracy.py --data $(DATA) --out bench/results/estimate_accuracy.json

# the share estimators on simulated corpora of sources the classifier never saw (leave-one-source-out, ~10 min)
bench-estimates-unseen: install
	$(PY) bench/estimates_unseen_sources.py --data $(DATA) --out bench/results/estimates_unseen_sources.json

# seconds and memory of the share estimates (cc, pcc, emq; whole input and per dump) on 1 M generated documents
bench-estimates-scale: install
	$(PY) bench/estimates_scale.py --out bench/results/estimates_scale.json

bench-classifier: install
	$(PY) bench/classifier_sources.py --data $(DATA)/labeled --out bench/results/classifier_sources.json

classifier: install
	$(PY) -m analyzer.training
	$(MAKE) classifier-ova

# the shipped model's leave-one-source-out misreading rows (classifiers/domain-v1.source-shift.json) without
# retraining it: the intervals' source-shift term (`make classifier` writes them too; ~8 min)
classifier-shift: install
	$(PY) -m analyzer.training.source_shift_rows --model classifiers/domain-v1.bin --train $(DATA)/labeled/train.jsonl.gz --dev $(DATA)/labeled/dev.jsonl.gz

# the shipped model's one-vs-all companion (classifiers/domain-v1.ova.bin): independent per-domain
# probabilities for --multi-label-threshold; the same recipe with one-vs-all loss (~2 min)
classifier-ova: install
	$(PY) -m analyzer.training.companion --model classifiers/domain-v1.bin --train $(DATA)/labeled/train.jsonl.gz --dev $(DATA)/labeled/dev.jsonl.gz

# the demo's shards as a 20 % sample, with the census (default) and without: the notebook compares them
demo-sample: install
	$(VENV)/bin/analyzer run $(DATA)/corpus/fineweb $(DATA)/corpus/dolma --out runs/demo-sample \
		--workers $(WORKERS) --sample-rate 0.2 --no-progress > /dev/null
	$(VENV)/bin/analyzer run $(DATA)/corpus/fineweb $(DATA)/corpus/dolma --out runs/demo-sample-plain \
		--workers $(WORKERS) --sample-rate 0.2 --no-classify-all --no-progress > /dev/null

notebooks: install demo demo-sample
	MPLBACKEND=Agg $(PY) notebooks/build_notebooks.py

clean:
	rm -rf runs bench/results .pytest_cache .mypy_cache .ruff_cache
