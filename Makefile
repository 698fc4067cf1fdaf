# Entry points for a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv synth test lint bench clean drill-sandbox graphs

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

synth: venv  ## offline synth of both stacks
	$(PY) -m synth

test: venv  ## the whole test suite
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

bench: venv  ## synth timings for the README
	$(PY) bench/synth.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

drill-sandbox: venv  ## region-evacuation end to end against moto and local endpoints (an emulation)
	$(PY) -m drills.sandbox

graphs: venv  ## architecture graphs of both stacks into docs/ (.svg too where graphviz is installed)
	$(PY) -m synth --graph docs/architecture.mmd > /dev/null
	$(PY) -m synth --graph docs/architecture.md > /dev/null
	$(PY) -m synth --graph docs/architecture.dot > /dev/null
	if command -v dot > /dev/null; then $(PY) -m synth --graph docs/architecture.svg > /dev/null; \
	else echo "graphviz's dot is not installed: no .svg (apt-get install graphviz)"; fi
