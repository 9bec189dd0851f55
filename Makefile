# Everything a newcomer needs starts from a bare clone: `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml emulator/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install test lint demo bench clean

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

clean:
	rm -rf $(VENV) airflow_home .demo
