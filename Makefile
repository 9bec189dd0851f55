# Everything a newcomer needs starts from a bare clone: `make demo` or `make test`.
PYTHON ?= python3
# Empty: the newest Airflow the dependencies allow, in .venv. A version (e.g. 3.0.6): that Airflow,
# in its own .venv-<version>, so both lines can be tested side by side.
AIRFLOW_VERSION ?=
VENV := $(if $(AIRFLOW_VERSION),.venv-$(AIRFLOW_VERSION),.venv)
# Pins that an older Airflow needs (its own constraints file is not reachable from every host).
AIRFLOW_PIN := $(if $(AIRFLOW_VERSION),apache-airflow==$(AIRFLOW_VERSION) \
	$(addprefix -c ,$(wildcard ci/constraints-airflow-$(AIRFLOW_VERSION).txt)))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml emulator/pyproject.toml $(wildcard ci/constraints-*.txt) | cksum | cut -d' ' -f1)

.PHONY: install test lint demo bench package-check clean

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

demo: install
	$(PY) scripts/demo.py

bench: install
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,bench]" -e ./emulator $(AIRFLOW_PIN)
	$(PY) -m benchmarks

clean:
	rm -rf .venv .venv-* airflow_home .demo dist
