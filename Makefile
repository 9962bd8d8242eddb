# The README's commands. `make demo` and `make test` set up everything they need first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test unit quick lint up clean screenshots

$(BIN)/lab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

setup: $(BIN)/lab

## Set up a fresh machine and run the whole pipeline once, verified.
demo: setup
	$(BIN)/lab demo

## Set up and run every test against real Redis, RabbitMQ and an Elasticsearch-API server.
test: setup
	$(BIN)/lab stack up --only redis,rabbitmq
	bash scripts/test-tools.sh
	$(BIN)/ruff check lab workers tests
	bash scripts/pytest.sh -q --durations=15 $(PYTEST_ARGS)

## Pure logic and the worker's and scheduler's decisions on stubs: seconds, no service needed.
unit: setup
	bash scripts/pytest.sh -q tests/unit $(PYTEST_ARGS)

## The quick loop: everything but the long drills.
quick: setup
	bash scripts/pytest.sh -q -m "not slow" $(PYTEST_ARGS)

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
