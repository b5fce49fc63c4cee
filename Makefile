# Two entry points: `make demo` and `make test`. Both create .venv and install langmix into it,
# with torch pinned through constraints.txt (an unpinned sentence-transformers would pull a
# multi-GB CUDA build of torch). constraints.txt is the one place that names the version.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.langmix-installed
DEMO_DIR ?= runs/demo
DATA_DIR ?= $(LANGMIX_DATA_DIR)
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

.PHONY: install demo test lint bench bench-corpus clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt torch
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The embedded default job: the demo scaling study (3 sizes x 4 strategies, report and plots).
demo: install
	$(BIN)/langmix study --config configs/demo.toml --output-dir $(DEMO_DIR) $(DATA_FLAG)

# Every benchmark in bench/ (about 15 minutes on 2 cores), then bench/README.md from the results.
BENCH := cd bench && ../$(BIN)/python
bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[bench]"
	$(BENCH) bench_metrics.py
	$(BENCH) bench_encode.py
	$(BENCH) bench_train.py
	$(BENCH) bench_growth.py
	$(BENCH) bench_demo.py
	$(BENCH) summarize.py

# The 200k-passage corpus pipeline (docs/scaling.md), about 6 minutes; not part of `make bench`.
bench-corpus: install
	$(BENCH) bench_corpus.py
	$(BENCH) summarize.py

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

test: install lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
