# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   installs into .venv and runs the GitHub function end to end, locally
#   make test   installs into .venv and runs lint, types and every test tier that can run here
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/tekton-integrations demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/pytest
