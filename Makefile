# plantlake: the two commands that work on a fresh machine (as root, Debian).
#   make demo   run the pipeline end to end on the embedded defaults (plant.yaml)
#   make test   install what is missing (system packages, venv, project) and run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: demo test system demo-system venv lint bench docs reliability clean

demo: demo-system venv
	$(PY) -m plantlake demo

test: system venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian packages the tests start themselves: Mosquitto, a PostgreSQL server, Redis (the Celery
# broker of the deployment test), nginx (its TLS proxy) and Chromium (the report is checked as a
# browser renders it). The demo needs Mosquitto only; without root it runs without its MQTT source
# and says so (so does PLANTLAKE_MOSQUITTO=none, which leaves the machine as it is).
TEST_PACKAGES := mosquitto postgresql chromium redis-server nginx

# $(call install_missing,<packages>,<hard|soft>): apt-get install what is missing; soft: warn without root
define install_missing
	@missing=""; \
	for p in $(1); do \
	  case $$p in \
	    mosquitto) [ -x /usr/sbin/mosquitto ] ;; \
	    mosquitto-clients) command -v mosquitto_sub >/dev/null ;; \
	    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ;; \
	    *) command -v $$p >/dev/null || [ -x /usr/sbin/$$p ] ;; \
	  esac || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "not root, cannot install:$$missing (apt-get install$$missing)" >&2; \
	    [ "$(2)" = soft ] || exit 1; \
	  else \
	    echo "installing system packages:$$missing"; \
	    install="env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing"; \
	    $$install >/dev/null 2>&1 || { apt-get update -qq && $$install >/dev/null; }; \
	  fi; \
	fi
endef

system:
	$(call install_missing,$(TEST_PACKAGES),hard)

demo-system:
ifeq ($(origin PLANTLAKE_MOSQUITTO),undefined)
	$(call install_missing,mosquitto,soft)
endif

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

# bench/mqtt.py measures the drain against the C client mosquitto_sub (Debian's mosquitto-clients)
bench: system venv
	$(call install_missing,mosquitto-clients,hard)
	$(PY) -m pip install -q -e ".[dev,bench]"
	$(PY) bench/run.py $(BENCH_ARGS)

docs: venv
	$(PY) -m plantlake schemas docs

# the fault suite, writing what it measured into docs/reliability.md (make test leaves it alone)
reliability: system venv
	PLANTLAKE_RELIABILITY_REPORT=docs/reliability.md $(PY) -m pytest -q -m faults tests/faults

clean:
	rm -rf lake drop demo-plant .pytest_cache
