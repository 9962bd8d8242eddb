# The README's commands. `make demo` and `make test` set up everything they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=
# The suite's tests run side by side on this many pytest-xdist workers (drills one at a time on
# one of them, see tests/conftest.py); most of a test's time is spent waiting on its processes.
TEST_WORKERS ?= 3
XDIST   = -n $(TEST_WORKERS) --dist loadgroup

.PHONY: setup demo test unit quick lint up clean screenshots

$(BIN)/lab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,targets]'
	@touch $@

setup: $(BIN)/lab
	@if command -v node >/dev/null 2>&1; then $(MAKE) --no-print-directory targets/bullmq/node_modules/.package-lock.json; \
	else echo "lab: node is not on PATH, so the bullmq target's worker is not set up (install Node 20, then make setup)"; fi

# The bullmq target's Node worker: the packages package-lock.json pins.
targets/bullmq/node_modules/.package-lock.json: targets/bullmq/package-lock.json
	cd targets/bullmq && npm ci --no-audit --no-fund --loglevel=error

## Set up a fresh machine and run the whole pipeline once, verified.
demo: setup
	$(BIN)/lab demo

## Set up and run every test against real Redis, RabbitMQ and an Elasticsearch-API server.
test: setup
	$(BIN)/lab stack up --only redis,rabbitmq
	bash scripts/test-tools.sh
	$(BIN)/ruff check lab workers tests
	bash scripts/pytest.sh -q $(XDIST) --durations=25 $(PYTEST_ARGS)

## Pure logic and the worker's and scheduler's decisions on stubs: seconds, no service needed.
unit: setup
	bash scripts/pytest.sh -q tests/unit $(PYTEST_ARGS)

## The quick loop: everything but the long drills.
quick: setup
	bash scripts/test-tools.sh
	bash scripts/pytest.sh -q $(XDIST) -m "not slow" $(PYTEST_ARGS)

## Refresh the README's screenshots (the suite itself saves them under its temporary folders).
screenshots: setup
	LAB_SCREENSHOTS=readme bash scripts/pytest.sh -q tests/test_admin_page.py tests/test_notebook_browser.py

lint: setup
	$(BIN)/ruff check lab workers tests
	$(BIN)/ruff format --check lab workers tests
	$(BIN)/mypy

up: setup
	$(BIN)/lab stack up
	$(BIN)/lab up --workers 2

clean:
	$(BIN)/lab stack down || true
	rm -rf .lab reports
