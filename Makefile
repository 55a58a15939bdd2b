# Set-up and everyday commands. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint format bench docs

$(BIN)/lastgood: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/lastgood

install: $(BIN)/lastgood

demo: install
	$(BIN)/lastgood demo

test: install
	$(BIN)/ruff check lastgood tests bench scripts
	$(BIN)/ruff format --check lastgood tests bench scripts
	$(BIN)/mypy  # strict, on the package: [tool.mypy] in pyproject.toml
	# three workers on two cores (a third of a test's time is waiting: bakes, servers starting),
	# each test file whole on one of them
	$(BIN)/pytest -n 3 --dist loadfile

lint: install
	$(BIN)/ruff check lastgood tests bench scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format lastgood tests bench scripts

bench: install
	$(BIN)/python bench/rollback.py
	$(BIN)/python bench/store_size.py
	$(BIN)/python bench/watch.py
	$(BIN)/python bench/consumers.py
	$(BIN)/python bench/import_git.py
	-$(BIN)/python bench/config_reads.py  # needs Debian's wrk and nginx; says so when missing

docs: install
	$(BIN)/python scripts/gen_cli_docs.py
