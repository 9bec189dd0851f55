# Everything a newcomer needs starts from a bare clone: `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml emulator/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install test lint demo bench e2e e2e-install clean

install: $(STAMP)

$(STAMP): pyproject.toml emulator/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev]" -e ./emulator
	rm -f $(VENV)/.installed-* && touch $@

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# KEEP=1 leaves Airflow and the emulator running after the summary, until Ctrl-C.
demo: install
	$(PY) scripts/demo.py $(if $(filter 1 yes true,$(KEEP)),--keep)

bench: install
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,bench]" -e ./emulator
	$(PY) -m benchmarks

# System tests of the production shape (tests/system, not in `make test`): PostgreSQL, Redis,
# CeleryExecutor, two triggerers and a headless Chromium, with the provider installed from its
# wheel into a venv of its own. Debian packages are installed when missing (CI runs as root).
E2E_VENV := .venv-e2e
E2E_PY := $(E2E_VENV)/bin/python
E2E_APT := postgresql redis-server chromium chromium-driver
E2E_AIRFLOW ?= apache-airflow
E2E_PIP := $(E2E_AIRFLOW) apache-airflow-providers-celery psycopg2-binary asyncpg redis selenium \
	pytest pytest-timeout

e2e-install: install
	@missing=$$(for p in $(E2E_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	test -x $(E2E_PY) || $(VENV)/bin/uv venv --quiet --python $(PY) $(E2E_VENV)
	rm -rf $(E2E_VENV)/wheels
	$(VENV)/bin/uv build --quiet --wheel --out-dir $(E2E_VENV)/wheels .
	$(VENV)/bin/uv build --quiet --wheel --out-dir $(E2E_VENV)/wheels emulator
	$(VENV)/bin/uv pip install --quiet --python $(E2E_PY) --reinstall-package airflow-provider-sgseg \
		--reinstall-package sgseg-emulator $(E2E_VENV)/wheels/*.whl $(E2E_PIP)

e2e: e2e-install
	cd tests/system && ../../$(E2E_PY) -m pytest -p no:cacheprovider -c /dev/null --rootdir=. \
		--confcutdir=. --timeout=900 -v -s -rA .

clean:
	rm -rf $(VENV) $(E2E_VENV) airflow_home .demo
