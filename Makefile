# Two commands on a fresh machine:  make run   (the main job)   make test   (the whole suite)
# Each installs what it needs (.venv from pinned requirements, Azurite from package-lock.json)
# and starts what it needs (Azurite, in memory), then stops what it started.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: setup run test test-fast bench bench-load bench-monitoring checkov clean help

help:
	@echo "make run    - local end-to-end run on Azurite with synthetic data (then serves the API)"
	@echo "make test   - the whole test suite (starts its own Azurite)"
	@echo "make test-fast - the unit tests only: domain and services on in-memory fakes (seconds, no Azurite)"
	@echo "make bench  - benchmarks, written to docs/BENCHMARKS.md"
	@echo "make bench-monitoring - the monitoring timer at 10,000 and 100,000 decisions vs the full audit scan, written to docs/BENCHMARKS.md by hand"
	@echo "make bench-load - the HTTP API under fixed request rates (locust, ~5 min), written to docs/BENCHMARKS.md"
	@echo "make checkov - checkov over infra/bicep (also part of make test)"

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

# The browser test drives Debian's Chromium headless (never a downloaded browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

setup: $(PY_STAMP) $(NODE_STAMP)

run: setup
	$(PY) -m tools.azurite -- $(PY) -m tools.local_run $(RUN_ARGS)

test: setup $(INFRA_STAMP) $(CHROMIUM)
	$(MAKE) --no-print-directory checkov
	$(PY) -m pytest

# The inner loop: domain and services on in-memory fakes; no Azurite, no browser, no network.
test-fast: $(PY_STAMP)
	$(PY) -m pytest tests/unit

# Checkov over the Bicep (its own venv: its dependencies would fight the app's pins).
checkov: $(INFRA_STAMP)
	$(INFRA_VENV)/bin/checkov -d infra/bicep --framework bicep --quiet --compact --skip-download

bench: setup
	$(PY) -m tools.azurite --free-ports -- $(PY) -m bench.run

# The monitoring timer at 10,000 and 100,000 decisions, against the full audit scan (issue #15).
bench-monitoring: setup
	$(PY) -m tools.azurite --free-ports -- $(PY) -m bench.monitoring $(MONITORING_ARGS)

bench-load: setup
	$(PY) -m tools.azurite --free-ports -- $(PY) -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules data artifacts test-output .pytest_cache
