# The README's two commands: `make demo` (the main job) and `make test` (the whole test suite).
# Each sets itself up: venv, Python dependencies, Kafka jars (Maven Central), Debian packages.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test unit integration lint check format-check demo up down status env-table

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
	@touch $@

# Idempotent: Kafka jars into ~/.cache/journeys, apt-get only for binaries that are missing.
setup: $(STAMP)
	$(BIN)/journeys setup

# Unit and integration tests against a real Kafka and Redis: KAFKA_BOOTSTRAP_SERVERS/REDIS_URL when
# set, else a Docker engine (testcontainers), else the local stack, started and stopped by the tests.
# The chaos suite's short run is part of it; its figures go to .journeys/ (a run by hand, `pytest -m chaos`,
# publishes to bench/results/ instead), so the test command leaves the checkout clean.
# Lint first (ruff, the format check, mypy: seconds), so CI, which runs this target, enforces them too.
test: setup lint
	JOURNEYS_CHAOS_RESULTS=$${JOURNEYS_CHAOS_RESULTS:-.journeys/chaos-results.md} $(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q -m unit

integration: setup
	$(BIN)/pytest -q -m "not unit"

lint: $(STAMP)
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/mypy

# Before you push (CONTRIBUTING.md): lint, types and the unit tests; no Kafka, no Redis.
check: lint unit

# Would `ruff format` change anything? (read-only; `ruff format <files>` formats the files you touched)
format-check: $(STAMP)
	$(BIN)/ruff format --check services tests bench

# The simulator's live demo; before it existed this brought the stack up and printed the endpoints.
demo: setup
	@if $(BIN)/journeys demo --help >/dev/null 2>&1; then $(BIN)/journeys demo --no-setup; \
	else $(BIN)/journeys up && $(BIN)/journeys status; fi

up: setup
	$(BIN)/journeys up

down: $(STAMP)
	$(BIN)/journeys down

status: $(STAMP)
	$(BIN)/journeys status

# Regenerate the configuration table in docs/configuration.md from the settings classes.
env-table: $(STAMP)
	$(BIN)/python -m services.stack.readme_table
