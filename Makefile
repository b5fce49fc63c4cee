# Two entry points: `make demo` and `make test`. Both create .venv and install langmix into it,
# with torch pinned through constraints.txt (an unpinned sentence-transformers would pull a
# multi-GB CUDA build of torch).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.langmix-installed
DEMO_DIR ?= runs/demo
DATA_DIR ?= $(LANGMIX_DATA_DIR)
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The embedded default job: the demo scaling study (3 sizes x 4 strategies, report and plots).
demo: install
	$(BIN)/langmix study --config configs/demo.toml --output-dir $(DEMO_DIR) $(DATA_FLAG)

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

test: install lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
