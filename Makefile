# jaas: the two setup commands are `make demo` and `make test` (see README.md).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: demo test check env env-test clean system system-runtime hub-proxy

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

# system packages: what the runtime needs (npm for the portal's front end), or all the
# services the tests start (PostgreSQL, Slurm, XRootD, Nginx, Chromium)
system-runtime:
	bash scripts/ensure-system-packages --runtime
system:
	bash scripts/ensure-system-packages

# operator portal SPA (frontend/dist): API types generated from the OpenAPI document, then built
UI_SOURCES := $(shell find frontend/src -type f -not -name '*.d.ts' 2>/dev/null) \
	frontend/package.json frontend/package-lock.json frontend/vite.config.ts \
	$(wildcard src/jaas/portal/*.py)
frontend/node_modules/.installed: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@
frontend/dist/index.html: $(UI_SOURCES) frontend/node_modules/.installed $(VENV)/.installed
	$(BIN)/python -m jaas.portal.openapi > frontend/openapi.json
	cd frontend && npm run build

# the multi-user hub's configurable-http-proxy (npm, local install; `make hub-proxy`)
HUB_PROXY := deploy/jupyterhub/node_modules/.installed
$(HUB_PROXY): deploy/jupyterhub/package-lock.json
	cd deploy/jupyterhub && npm ci --no-audit --no-fund --loglevel=error
	touch $@
hub-proxy: $(HUB_PROXY)

env: system-runtime $(VENV)/.installed frontend/dist/index.html $(HUB_PROXY)
env-test: system $(VENV)/.installed-test frontend/dist/index.html $(HUB_PROXY)

## make demo: create the environment, simulate a run and analyse it (no services needed)
demo: env
	$(BIN)/jaas demo

## make check: lint, format check and type check in one command
check: env-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	cd frontend && npm run check

## make test: install what the tests need (system services included), then check + all tests
test: env-test
	$(MAKE) --no-print-directory check
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
