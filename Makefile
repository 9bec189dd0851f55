# Everything a newcomer needs starts from a bare clone: `make demo` or `make test`.
PYTHON ?= python3
# Empty: the newest Airflow 3.3.x, in .venv. A version (e.g. 3.0.6): that Airflow, in its own
# .venv-<version>, so both lines can be tested side by side.
AIRFLOW_VERSION ?=
VENV := $(if $(AIRFLOW_VERSION),.venv-$(AIRFLOW_VERSION),.venv)
# The newest line is asked for by name: left open, the resolver may settle on an older Airflow
# (seen: 3.2.2 beside the Celery provider). An older line also takes the pins it needs (its own
# constraints file is not reachable from every host).
NEWEST_AIRFLOW := apache-airflow>=3.3,<3.4
AIRFLOW_PIN := $(if $(AIRFLOW_VERSION),apache-airflow==$(AIRFLOW_VERSION) \
	$(addprefix -c ,$(wildcard ci/constraints-airflow-$(AIRFLOW_VERSION).txt)),"$(NEWEST_AIRFLOW)")
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml emulator/pyproject.toml $(wildcard ci/constraints-*.txt); echo '$(AIRFLOW_PIN)') | cksum | cut -d' ' -f1)

.PHONY: install test lint demo bench package-check e2e e2e-install clean

install: $(STAMP)

$(STAMP): pyproject.toml emulator/pyproject.toml $(wildcard ci/constraints-*.txt)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev]" -e ./emulator $(AIRFLOW_PIN)
	rm -f $(VENV)/.installed-* && touch $@

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Both distributions built and twine-checked; the provider wheel alone next to Airflow (default:
# the oldest supported line) in a clean venv; then the example pipeline from the installed wheels.
package-check: install
	$(PY) scripts/package_check.py --airflow $(or $(AIRFLOW_VERSION),3.0.6)

# KEEP=1 leaves Airflow and the emulator running after the summary, until Ctrl-C.
demo: install
	$(PY) scripts/demo.py $(if $(filter 1 yes true,$(KEEP)),--keep)

# Benchmark 6's PostgreSQL rows run Debian's postgresql (installed when missing, as for e2e).
bench: install
	@dpkg -s postgresql >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; }
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,bench]" -e ./emulator $(AIRFLOW_PIN)
	$(PY) -m benchmarks

# System tests of the production shape (tests/system, not in `make test`): PostgreSQL, Redis,
# CeleryExecutor, two triggerers and a headless Chromium, with the provider installed from its
# wheel into a venv of its own. Debian packages are installed when missing (CI runs as root).
E2E_VENV := .venv-e2e
E2E_PY := $(E2E_VENV)/bin/python
E2E_APT := postgresql redis-server chromium chromium-driver
E2E_AIRFLOW ?= "$(NEWEST_AIRFLOW)"
E2E_PIP := $(E2E_AIRFLOW) apache-airflow-providers-celery apache-airflow-providers-postgres psycopg2-binary \
	asyncpg redis selenium \
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
	rm -rf .venv .venv-* airflow_home .demo dist
