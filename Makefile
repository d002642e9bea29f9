# plantlake: the two commands that work on a fresh machine (as root, Debian).
#   make demo   run the pipeline end to end on the embedded defaults (plant.yaml)
#   make test   install what is missing (system packages, venv, project) and run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: demo test system venv lint bench docs reliability clean

demo: venv
	$(PY) -m plantlake demo

test: system venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian packages the tests start themselves: Mosquitto, a PostgreSQL server, Redis (the Celery
# broker of the deployment test), nginx (its TLS proxy) and Chromium (the report is checked as a browser renders it).
system:
	@missing=""; \
	[ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)" >&2; exit 1; fi; \
	  install="env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing"; \
	  $$install >/dev/null 2>&1 || { apt-get update -qq && $$install >/dev/null; }; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@# the tests' independent Sparkplug B encoder; --no-deps: it pins paho-mqtt<2 for a client the
	@# tests never use (plantlake runs paho-mqtt 2), and its one other dependency, protobuf, is ours
	$(PY) -m pip install -q --no-deps pysparkplug==0.6.1
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: system venv
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) bench/run.py $(BENCH_ARGS)

docs: venv
	$(PY) -m plantlake schemas docs

# the fault suite, writing what it measured into docs/reliability.md (make test leaves it alone)
reliability: system venv
	PLANTLAKE_RELIABILITY_REPORT=docs/reliability.md $(PY) -m pytest -q -m faults tests/faults

clean:
	rm -rf lake drop demo-plant .pytest_cache
