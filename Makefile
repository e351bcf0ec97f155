# paper-digest — `make demo` shows it working, `make test` proves it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format clean

install: $(STAMP)  ## create .venv with the package (editable) and the dev tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install  ## run the whole pipeline on the bundled sample (outbox + feeds on disk)
	$(BIN)/digest demo --dir demo-output

test: install  ## run the whole test suite
	$(BIN)/pytest

lint: install  ## ruff + mypy strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
