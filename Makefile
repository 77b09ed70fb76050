# jaas: the two setup commands are `make demo` and `make test` (see README.md).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: demo test check env env-test clean portal-ui

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# runtime environment (what a user needs)
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

# test environment: adds test tools, linters and the optional ROOT wheel
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[all,test,dev,root]'
	touch $@

# operator portal SPA (frontend/dist): API types generated from the OpenAPI document, then built
portal-ui: $(VENV)/.installed
	$(BIN)/python -m jaas.portal.openapi > frontend/openapi.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build

env: $(VENV)/.installed portal-ui
env-test: $(VENV)/.installed-test portal-ui

## make demo: create the environment, simulate a run and analyse it (no services needed)
demo: env
	$(BIN)/jaas demo

## make check: lint, format check and type check in one command
check: env-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## make test: install what the tests need (system services included), then check + all tests
test: env-test
	bash scripts/ensure-system-packages
	$(MAKE) --no-print-directory check
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
