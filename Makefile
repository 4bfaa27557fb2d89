# make demo: set up and run the live biofeedback job on the built-in simulator.
# make test: set up and run the whole test suite (what CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the project needs at run or test time (Qt offscreen runtime, C toolchain,
# the private D-Bus of the fake BlueZ in the BLE tests).
DEBS := gcc make libc6-dev libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 dbus-daemon
# Wanted but not required: chromium renders the HTML reports in tests (they skip, saying so, without it).
DEBS_OPTIONAL := chromium

.PHONY: demo test lint bench firmware debs clean

demo: debs $(VENV)/.installed
	$(BIN)/biofeed demo

test: debs $(VENV)/.installed
	$(BIN)/ruff check biofeed tests bench firmware_protocol fuzz
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check biofeed tests bench firmware_protocol fuzz
	$(BIN)/ruff format --check biofeed tests bench firmware_protocol fuzz
	$(BIN)/mypy

bench: $(VENV)/.installed $(VENV)/.peers
	$(BIN)/python -m bench

# The peers the benchmarks compare with (neurokit2, biosppy): benchmark-only, never runtime.
$(VENV)/.peers: pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,peers]'
	touch $@

firmware: debs
	$(MAKE) -C firmware_protocol test

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Installs only what is missing, so a machine that has everything never touches apt.
debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi
	@missing=$$(for p in $(DEBS_OPTIONAL); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing optional Debian packages:" $$missing; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi; \
		( $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing ) \
			|| echo "warning: could not install $$missing; the tests that need it will say they were skipped"; \
	fi

clean:
	rm -rf $(VENV) build firmware_protocol/build .pytest_cache .hypothesis
