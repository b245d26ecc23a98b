# kmesh developer entry points. Every target creates or reuses .venv by itself, so on a new machine
# `make demo` or `make test` alone installs everything needed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall when the packaging files change; otherwise reuse the venv as it is.
STAMP := $(VENV)/.kmesh-installed

.PHONY: venv lint format test test-unit test-pure demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard kmesh/_fastpath/*.pyx)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel cython
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[dev]"
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check kmesh tests bench examples setup.py
	$(VENV)/bin/ruff format --check kmesh tests bench examples setup.py
	$(VENV)/bin/mypy kmesh

format: $(STAMP)
	$(VENV)/bin/ruff check --fix kmesh tests bench examples setup.py
	$(VENV)/bin/ruff format kmesh tests bench examples setup.py

# The whole suite with the compiled fast path, then the unit tests again forced to pure Python.
test: lint
	$(VENV)/bin/pytest -q
	KMESH_NO_EXTENSIONS=1 $(VENV)/bin/pytest -q tests/unit

demo: $(STAMP)
	$(PY) examples/demo.py

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .kmesh-demo
	find kmesh -name '*.so' -delete
	find kmesh/_fastpath -name '*.c' -delete
