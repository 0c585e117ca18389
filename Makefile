# Two commands on a fresh machine:  make run   (the main job)   make test   (the whole suite)
# Each installs what it needs (.venv from the hashed lock requirements-dev.txt, Azurite from package-lock.json)
# and starts what it needs (Azurite, in memory), then stops what it started.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed
LOCK_VENV := .venv-lock
LOCK_STAMP := $(LOCK_VENV)/.installed

.PHONY: setup run test test-fast bench bench-load bench-monitoring checkov lock clean help

help:
	@echo "make run    - local end-to-end run on Azurite with synthetic data (then serves the API)"
	@echo "make test   - the whole test suite (starts its own Azurite)"
	@echo "make test-fast - the unit tests only: domain and services on in-memory fakes (seconds, no Azurite)"
	@echo "make bench  - benchmarks, written to docs/BENCHMARKS.md (the scoring path vs baselines; storage requests and app CPU per event)"
	@echo "make bench-monitoring - the monitoring timer at 10,000 and 100,000 decisions vs the full audit scan, written to docs/BENCHMARKS.md by hand"
	@echo "make bench-load - the HTTP API under fixed request rates (locust, ~5 min), written to docs/BENCHMARKS.md"
	@echo "make checkov - checkov over infra/bicep (also part of make test)"
	@echo "make lock   - regenerate the hashed locks requirements*.txt from requirements*.in"

# Every venv installs from a hashed lock (every package, direct and transitive, pinned with its
# sha256): pip's hash-checking mode refuses a file whose hash differs, and any dependency the
# lock lacks (so no --no-deps: the locks are complete, and pip checks that they stay so).
# requirements-dev.txt holds everything in the runtime lock requirements.txt, at the same versions.
$(PY_STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-infra.txt
	touch $@

# The lock tool (uv) in a throwaway venv of its own, itself installed from a hashed lock.
$(LOCK_STAMP): requirements-locktool.txt
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-locktool.txt
	touch $@

# Regenerate every hashed lock from its human-edited .in, for CPython 3.11 on Linux x86_64 (the
# Function App's). A lock's current pins are kept unless an .in asks otherwise: to move one
# package, `make lock LOCK_ARGS="--upgrade-package NAME"`. The infra lock needs 3.11.5+ (soupsieve).
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile --no-config --quiet --generate-hashes \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" $(LOCK_ARGS)
lock: $(LOCK_STAMP)
	$(UV_COMPILE) --python-version 3.11 -o requirements.txt requirements.in
	$(UV_COMPILE) --python-version 3.11 -o requirements-dev.txt requirements-dev.in
	$(UV_COMPILE) --python-version 3.11.7 -o requirements-infra.txt requirements-infra.in
	$(UV_COMPILE) --python-version 3.11 -o requirements-locktool.txt requirements-locktool.in

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
	$(PY) -m tools.azurite --free-ports -- $(PY) -m bench.storage_requests

# The monitoring timer at 10,000 and 100,000 decisions, against the full audit scan (issue #15).
bench-monitoring: setup
	$(PY) -m tools.azurite --free-ports -- $(PY) -m bench.monitoring $(MONITORING_ARGS)

bench-load: setup
	$(PY) -m tools.azurite --free-ports -- $(PY) -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(LOCK_VENV) node_modules data artifacts test-output .pytest_cache
