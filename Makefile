# faultline: every target calls the hostgen CLI; `setup` is the only one with logic of its own.
BOARD ?= stm32f4
MODEL ?=
PORT ?=
FIRMWARE ?=
PYTHON ?= python3
VENV := .venv
HOSTGEN := $(VENV)/bin/hostgen
SETUP_STAMP := $(VENV)/.setup-complete
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi chromium mosquitto mosquitto-clients qemu-system-arm gcc-multilib

.PHONY: setup gen size cross flash vboard demo gateway-demo test test-fast hil lint clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
	  { echo "setup: need Python 3.11 as '$(PYTHON)'; run 'make PYTHON=python3.11 ...'"; exit 1; }
	@missing=""; \
	  { command -v arm-none-eabi-gcc && command -v chromium && { command -v mosquitto || test -x /usr/sbin/mosquitto; } && command -v mosquitto_passwd && command -v qemu-system-arm && test -d /usr/lib/gcc/x86_64-linux-gnu/12/32; } >/dev/null || missing="$(APT_PACKAGES)"; \
	  $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	    elif command -v sudo >/dev/null; then sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	    else echo "setup: install these Debian packages first: $$missing"; exit 1; fi; \
	  fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[test]"
	@touch $@

gen: setup
	$(HOSTGEN) gen --board $(BOARD) $(if $(MODEL),--model $(MODEL))

size: setup
	$(HOSTGEN) size --board $(BOARD) $(if $(MODEL),--model $(MODEL))

cross: gen
	$(HOSTGEN) cross --board $(BOARD)

flash: setup
	$(HOSTGEN) flash --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(FIRMWARE),--firmware $(FIRMWARE))

vboard: setup
	$(HOSTGEN) vboard --board $(BOARD)

demo: setup
	$(HOSTGEN) demo --board $(BOARD)

gateway-demo: setup
	$(HOSTGEN) gateway-demo --board $(BOARD)

test: setup
	$(VENV)/bin/python -m pytest -q tests

test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not slow and not hil" tests

lint: setup
	$(VENV)/bin/ruff check hostgen tests firmware

hil: setup
	$(VENV)/bin/python -m pytest -q -m hil tests/hil --hil-board $(BOARD) $(if $(PORT),--port $(PORT))

clean:
	rm -rf build
