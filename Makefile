# One command per habit: run, test, lint, bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests use: real ffmpeg, real browsers (Chromium with its driver, Firefox ESR), speech for
# the fake microphone, sox to shape it, and PostgreSQL for the production-database tests.
SYSTEM_PACKAGES := ffmpeg chromium chromium-driver firefox-esr espeak-ng sox postgresql redis-server

.PHONY: run test lint bench screenshots system-packages clean

$(BIN)/.app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.test: $(BIN)/.app pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(BIN)/.bench: $(BIN)/.app pyproject.toml
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

## Serve the app on http://localhost:8080 with SQLite and ./data (settings: VR_* variables or .env).
run: $(BIN)/.app
	$(BIN)/python main.py

## Install what the tests need (Debian packages too, when root), then lint and run the whole suite.
test: system-packages $(BIN)/.test lint
	$(BIN)/pytest

## Retake the README's screenshots with the real-browser tests.
screenshots: system-packages $(BIN)/.test
	VR_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/test_recorder_ux.py

lint: $(BIN)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services

## Measure the real app on loopback against baselines; prints one table, writes bench/results.md (~10 min).
## Never fails on speed. A shorter run: make bench BENCH_ARGS=--quick (writes bench/results-partial.md).
bench: $(BIN)/.bench
	$(BIN)/python -m bench $(BENCH_ARGS)

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing Debian packages: $$missing -- run 'sudo apt-get install $$missing' or run make test as root"; \
			exit 1; \
		fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
