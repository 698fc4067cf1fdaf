# Entry points for a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# apt-get needs root: sudo when not root.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: venv postgres synth test lint bench clean drill-sandbox rightsize-sandbox graphs

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "creating $(VENV) and installing the requirements (a minute or two, once) ..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The tools as commands (trading-synth, trading-drills, trading-rightsize), runnable from any directory.
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The drills' database tests and the sandbox run two PostgreSQL servers from Debian's packages; installed
# once when missing (runuser, which starts them as the postgres user, comes with util-linux).
postgres:
	@if ls /usr/lib/postgresql/*/bin/postgres > /dev/null 2>&1; then :; else \
	  echo "installing PostgreSQL server binaries: apt-get install postgresql (a minute, once) ..."; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql openssl; \
	fi

synth: venv  ## offline synth of both stacks
	$(PY) -m synth

# Four workers on two cores: the drill tests mostly wait on their PostgreSQL servers and moto; whole files go
# to one worker, so each module's moto server and fixtures start once, the slowest files first
# (tests/conftest.py's SLOWEST_FIRST, in collection order).
test: venv postgres  ## the whole test suite
	$(PY) -m pytest -n 4 --dist loadfile --no-loadscope-reorder

lint: venv
	$(VENV)/bin/ruff check .

bench: venv  ## synth timings for the README
	$(PY) bench/synth.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

drill-sandbox: venv postgres  ## docs/runbook.md followed end to end: moto, loopback endpoints, two PostgreSQL servers
	$(PY) -m drills.sandbox

rightsize-sandbox: venv  ## right-sizing end to end on moto: recommendations, --write, then synth --cost
	$(VENV)/bin/python -m rightsize.sandbox

graphs: venv  ## architecture graphs of both stacks into docs/ (.svg too where graphviz is installed)
	$(PY) -m synth --graph docs/architecture.mmd > /dev/null
	$(PY) -m synth --graph docs/architecture.md > /dev/null
	$(PY) -m synth --graph docs/architecture.dot > /dev/null
	if command -v dot > /dev/null; then $(PY) -m synth --graph docs/architecture.svg > /dev/null; \
	else echo "graphviz's dot is not installed: no .svg (apt-get install graphviz)"; fi
