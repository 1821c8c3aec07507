# One command per habit: run, test, lint, bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests use: real ffmpeg, real browsers (Chromium with its driver, Firefox ESR), speech for
# the fake microphone, sox to shape it, PostgreSQL for the production-database tests, and Node.js for the recorder's
# JavaScript unit tests (tests/js).
SYSTEM_PACKAGES := ffmpeg chromium chromium-driver firefox-esr espeak-ng sox postgresql redis-server nodejs
# Human speech with its transcripts, for the transcript benchmark's word error rate.
SYSTEM_PACKAGES += pocketsphinx-testdata
# HAProxy, the load balancer the scale-out test puts in front of two instances (with docs/haproxy.cfg).
SYSTEM_PACKAGES += haproxy
# What `make bench` runs besides the app: ffmpeg, speech for the transcript and live figures (espeak-ng, sox, the
# LibriVox clips), and PostgreSQL, Redis and HAProxy for the scale-out figures (SeaweedFS comes with the bench extras).
BENCH_PACKAGES := ffmpeg espeak-ng sox pocketsphinx-testdata postgresql redis-server haproxy
# What `make image-test` (the last step of `make test`) builds and starts the container image with.
IMAGE_PACKAGES := podman buildah mmdebstrap
# The app's dependencies, pinned with their hashes: `make` and the Dockerfile install exactly these.
LOCK := requirements.lock
UV_VERSION := 0.13.9
# Parallel pytest workers for `make test`: most tests wait on browsers, networks and timers rather than the CPU,
# so more workers than cores keeps them busy; 3 measured faster than 4 here (9 min 21 s against 10 min 57 s).
TEST_WORKERS ?= 3
# A machine that sets PYTHONDONTWRITEBYTECODE (this one does) makes every process compile every module it imports
# again: each app a test starts, each pytest worker, each transcript worker. Cached bytecode measured 6.5 → 1.9 CPU-s
# for one app start. __pycache__ is ignored by git.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint bench screenshots system-packages clean lock image-test

# uv installs into the venv what pip would, from the same index, three times faster (44 s → 14 s for the lock).
UV_PIP := $(BIN)/uv pip install --quiet --native-tls --python $(BIN)/python

$(BIN)/.app: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'
	$(UV_PIP) --no-deps --require-hashes -r $(LOCK)
	$(BIN)/pip check
	$(UV_PIP) --no-deps -e .
	touch $@

$(BIN)/.test: $(BIN)/.app pyproject.toml
	$(UV_PIP) -e '.[test]'
	touch $@

$(BIN)/.bench: $(BIN)/.app pyproject.toml
	$(UV_PIP) -e '.[bench]'
	touch $@

## Serve the app on http://localhost:8080 with SQLite and ./data (settings: VR_* variables or .env).
run: $(BIN)/.app
	$(BIN)/python main.py

## Install what the tests need (Debian packages too, when root), then lint, run the whole suite and check the
## container image (image-test, below).
test: system-packages $(BIN)/.test lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=10
	$(MAKE) --no-print-directory image-test

## Retake the README's screenshots with the real-browser tests.
screenshots: system-packages $(BIN)/.test
	VR_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/test_recorder_ux.py tests/test_transcript_browser.py

lint: $(BIN)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services api

## Measure the real app on loopback against baselines; prints one table, writes bench/results.md row by row
## (~17 min). Installs what it needs as `make test` does (Debian packages when root) and checks them before the
## first measurement. Never fails on speed. A shorter run: make bench BENCH_ARGS=--quick (bench/results-partial.md).
bench: $(BIN)/.bench
	$(MAKE) --no-print-directory system-packages SYSTEM_PACKAGES='$(BENCH_PACKAGES)'
	$(BIN)/python -m bench $(BENCH_ARGS)

## Pin the app's dependencies from pyproject.toml, with hashes, into requirements.lock; run it after changing them
## (a test checks that the two agree). Pins already in the lock are kept; LOCK_ARGS=--upgrade takes the newest.
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile --quiet --native-tls --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

## Build the container image with podman and start it as Docker would: health, a recording through the API and a
## browser, a restart with the data volume kept. Needs root. About 2 min on a fresh machine, 15 s with podman's
## cache; IMAGE_TEST_ARGS=--cold rebuilds everything.
image-test: system-packages $(BIN)/.test
	$(MAKE) --no-print-directory system-packages SYSTEM_PACKAGES='$(IMAGE_PACKAGES)'
	$(BIN)/python -m tests.support.image_check $(IMAGE_TEST_ARGS)

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing Debian packages: $$missing -- run 'sudo apt-get install $$missing' or run this make target as root"; \
			exit 1; \
		fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
