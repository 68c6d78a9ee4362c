# Quick start on a fresh machine with only Python >= 3.11:
#   make demo   set up .venv and run the example experiment; prints the report's path
#   make test   set up .venv and run the default test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint install clean browser lab

demo: $(STAMP)
	$(BIN)/causal run experiments/extended_warranty_pilot.yaml

# `browser` first: the browser tests run when Chromium is (or can be) installed, else they skip.
test: $(STAMP) browser
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check causal tests bench notebooks

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download is not used).
# Never fails: without Chromium the browser tests are skipped.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	|| (command -v apt-get >/dev/null && apt-get update -qq \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	|| echo "make browser: cannot install chromium (needs apt-get and root); browser tests will be skipped"

# JupyterLab on the report notebooks with the project's kernel ("Python (causal)").
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "causal needs Python >= 3.11; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the project's dependencies change; register the Jupyter kernel inside the
# venv (absolute interpreter path) so papermill never fails with "no such kernel".
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name causal --display-name "Python (causal)"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
