# The README's two commands: `make demo` (main job) and `make test` (the test suite). Each sets itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test unit lint demo

$(BIN)/journeys: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(BIN)/journeys

unit: setup
	$(BIN)/pytest -m unit -q

lint: setup
	$(BIN)/ruff check services tests bench
	$(BIN)/mypy

test: setup
	$(BIN)/pytest -q

demo: setup
	$(BIN)/journeys demo
