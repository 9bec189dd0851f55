# Everything a newcomer needs starts from a bare clone: `make demo` or `make test`.
PYTHON ?= python3
# The supported Airflow lines (the newest release of each minor), oldest first. Each installs the
# way its users install it: `apache-airflow==<version>` with that release's pins,
# ci/constraints-airflow-<version>.txt (see ci/README.md). The newest line lives in .venv, every
# other one in .venv-<version>, so lines can be tested side by side:
#   make test AIRFLOW_VERSION=3.0.6
LINES := 3.0.6 3.1.8 3.2.2 3.3.2
OLDEST := $(firstword $(LINES))
NEWEST := $(lastword $(LINES))
ASKED_VERSION := $(AIRFLOW_VERSION)
override AIRFLOW_VERSION := $(or $(AIRFLOW_VERSION),$(NEWEST))
VENV := $(if $(filter $(NEWEST),$(AIRFLOW_VERSION)),.venv,.venv-$(AIRFLOW_VERSION))
CONSTRAINTS := ci/constraints-airflow-$(AIRFLOW_VERSION).txt
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml emulator/pyproject.toml $(CONSTRAINTS) 2>/dev/null | cksum | cut -d' ' -f1)
# pytest-xdist workers for `make test` (each has its own AIRFLOW_HOME and emulators on free ports;
# the tests that run Airflow processes share one worker, see tests/conftest.py); 0: one process.
WORKERS ?= 2
XDIST := $(if $(filter-out 0,$(WORKERS)),-n $(WORKERS) --dist loadgroup)
# What `make test-line` runs on the middle lines: DAGs, operators, sensors, triggers, reliability,
# the production shape (Fernet key, stored connections) and the pins in force. Not the demo
# driver's tests: `make demo` runs on the newest line, and the oldest runs the whole suite.
LINE_TESTS := tests/dags tests/operators tests/sensors tests/triggers tests/reliability \
	tests/test_production_shape.py tests/test_constraints.py --ignore=tests/dags/test_demo_driver.py
DIST := dist/packages

.PHONY: install install-lines test test-line lint demo bench dist package-check package-checks \
	e2e e2e-install pins fresh-check clean

install: $(STAMP)

$(STAMP): pyproject.toml emulator/pyproject.toml $(wildcard $(CONSTRAINTS))
	@test -f $(CONSTRAINTS) || { echo "no $(CONSTRAINTS): the supported lines are $(LINES)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(UV) pip install --quiet --python $(PY) -e . --group dev -e ./emulator \
		apache-airflow==$(AIRFLOW_VERSION) -c $(CONSTRAINTS)
	rm -f $(VENV)/.installed-* && touch $@

# Every line's venv at once (the installs mostly wait on the network and the uv cache).
install-lines:
	$(MAKE) --no-print-directory -j$(words $(LINES)) $(addprefix install-,$(LINES))

install-%:
	$(MAKE) --no-print-directory install AIRFLOW_VERSION=$*

test: install
	$(PY) -m pytest -q -p no:cacheprovider $(XDIST)

test-line: install
	$(PY) -m pytest -q -p no:cacheprovider $(XDIST) $(LINE_TESTS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Both distributions, built once for package-check and e2e.
dist: install
	rm -rf $(DIST)
	$(UV) build --quiet --out-dir $(DIST) .
	$(UV) build --quiet --out-dir $(DIST) emulator

# The built distributions twine-checked (no dev extras in the metadata); the provider wheel alone
# next to Airflow $(PACKAGE_AIRFLOW) in a clean venv with its constraints; then the example pipeline
# from the installed wheels. Default: the oldest line; AIRFLOW_VERSION=... checks that line.
PACKAGE_AIRFLOW := $(or $(ASKED_VERSION),$(OLDEST))
# The check's own tools (twine) come from the newest line's venv: an older line's pins hold a
# pkginfo that cannot read the wheels' metadata version.
package-check:
	$(MAKE) --no-print-directory install AIRFLOW_VERSION=$(NEWEST)
	test -n "$$(ls $(DIST)/*.whl 2>/dev/null)" || $(MAKE) --no-print-directory dist AIRFLOW_VERSION=$(NEWEST)
	.venv/bin/python scripts/package_check.py --airflow $(PACKAGE_AIRFLOW) --built $(DIST)

# CI's package checks: the middle lines, one after the other (two example pipelines at once on
# 2 cores starve each other's waits). The newest line's wheels are what `make e2e` installs; the
# oldest runs the whole suite (`make package-check` alone still checks it).
PACKAGE_LINES := $(filter-out $(OLDEST) $(NEWEST),$(LINES))
package-checks:
	$(MAKE) --no-print-directory install AIRFLOW_VERSION=$(NEWEST)
	test -n "$$(ls $(DIST)/*.whl 2>/dev/null)" || $(MAKE) --no-print-directory dist AIRFLOW_VERSION=$(NEWEST)
	$(MAKE) --no-print-directory $(addprefix package-check-,$(PACKAGE_LINES))

package-check-%:
	$(MAKE) --no-print-directory package-check AIRFLOW_VERSION=$*

# KEEP=1 leaves Airflow and the emulator running after the summary, until Ctrl-C.
demo: install
	$(PY) scripts/demo.py $(if $(filter 1 yes true,$(KEEP)),--keep)

# Benchmark 6's PostgreSQL rows run Debian's postgresql (installed when missing, as for e2e).
bench: install
	@dpkg -s postgresql >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; }
	$(UV) pip install --quiet --python $(PY) -e . --group dev --group bench -e ./emulator \
		apache-airflow==$(AIRFLOW_VERSION) -c $(CONSTRAINTS)
	$(PY) -m benchmarks

# Re-resolve ci/constraints-airflow-*.txt (ci/pin.sh; PIN_LINES="3.0.6 3.1.8" for some).
pins: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ci/pin.sh $(PIN_LINES)

# Not in CI: what a user who skips the constraints gets today. A fresh resolve of the line (no
# pins) in .venv-fresh-<version>, then the production-shape tests there. It fails when an
# upstream release breaks the line; the pins in ci/ are what keeps `make test` and users safe.
fresh-check: install
	rm -rf .venv-fresh-$(AIRFLOW_VERSION)
	$(UV) venv --quiet --python $(PY) .venv-fresh-$(AIRFLOW_VERSION)
	$(UV) pip install --quiet --python .venv-fresh-$(AIRFLOW_VERSION)/bin/python -e . --group dev \
		-e ./emulator apache-airflow==$(AIRFLOW_VERSION)
	.venv-fresh-$(AIRFLOW_VERSION)/bin/python -m pytest -q -p no:cacheprovider \
		tests/test_production_shape.py

# System tests of the production shape (tests/system, not in `make test`): PostgreSQL, Redis,
# CeleryExecutor, two triggerers and a headless Chromium, with the provider installed from its
# wheel (the one `make dist` built) into a venv of its own, on the newest line with its pins.
# Debian packages are installed when missing (CI runs as root).
E2E_VENV := .venv-e2e
E2E_PY := $(E2E_VENV)/bin/python
E2E_APT := postgresql redis-server chromium chromium-driver
E2E_AIRFLOW ?= $(NEWEST)
E2E_PIP := apache-airflow==$(E2E_AIRFLOW) apache-airflow-providers-celery apache-airflow-providers-postgres \
	psycopg2-binary asyncpg redis selenium pytest pytest-timeout

e2e-install: install
	@missing=$$(for p in $(E2E_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	test -n "$$(ls $(DIST)/*.whl 2>/dev/null)" || $(MAKE) --no-print-directory dist
	test -x $(E2E_PY) || $(UV) venv --quiet --python $(PY) $(E2E_VENV)
	$(UV) pip install --quiet --python $(E2E_PY) --reinstall-package airflow-provider-sgseg \
		--reinstall-package sgseg-emulator $(DIST)/*.whl $(E2E_PIP) -c ci/constraints-airflow-$(E2E_AIRFLOW).txt

e2e: e2e-install
	cd tests/system && ../../$(E2E_PY) -m pytest -p no:cacheprovider -c /dev/null --rootdir=. \
		--confcutdir=. --timeout=900 -v -s -rA .

clean:
	rm -rf .venv .venv-* airflow_home .demo dist
