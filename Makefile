# The two set-up commands of the README:
#   make run    install (first time) and start the API on 127.0.0.1:8000 + the interface on 127.0.0.1:8501
#   make test   install (first time) everything, then run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
UI_PORT ?= 8501
DATA ?= organized_data
MODEL ?= trained_model_parameters/siamese_resnet18.safetensors

# `make run` serves the shipped model's ONNX export: no torch (backend/requirements-serve.txt); `make test` adds the
# ML core's requirements (torch, backend/requirements.txt), the notebooks' and the test tools.
RUN_REQS := backend/requirements-serve.txt interface/requirements.txt
TEST_REQS := $(RUN_REQS) backend/requirements.txt requirements_model_notebooks.txt requirements-dev.txt

.PHONY: run test test-postgres install install-dev api interface browser-deps clean

$(VENV)/.run-installed: $(RUN_REQS) backend/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade --quiet pip
	$(PIP) install --quiet $(addprefix -r ,$(RUN_REQS))
	$(PIP) install --quiet --no-deps -e backend
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed $(TEST_REQS)
	$(PIP) install --quiet $(addprefix -r ,$(TEST_REQS))
	touch $@

install: $(VENV)/.run-installed
install-dev: $(VENV)/.test-installed

# Debian's Chromium for the browser test (Playwright drives it; no browser is downloaded).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will be skipped"; \
	fi
	@# Debian's fonts for synthetic documents (sigml.synthdocs: DejaVu and Noto for training and validation pages,
	@# Liberation and FreeFont for test pages); without them Pillow's built-in font stands in and tests that
	@# measure documents skip
	@if [ ! -d /usr/share/fonts/truetype/liberation ] || [ ! -d /usr/share/fonts/truetype/freefont ] || [ ! -d /usr/share/fonts/truetype/noto ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core fonts-noto-core fonts-liberation fonts-freefont-ttf >/dev/null) \
			|| echo "fonts could not be installed: tests that measure synthetic documents will be skipped"; \
		fi; \
	fi
	@# Debian's nginx for the production-setup tests (nginx in front of gunicorn, deploy/nginx/sigver.conf)
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null) \
		|| echo "nginx could not be installed: the tests through nginx will be skipped"; \
	fi

run: install
	@PY=$(PY) API_HOST=$(API_HOST) API_PORT=$(API_PORT) UI_PORT=$(UI_PORT) MODEL=$(MODEL) DATA=$(DATA) scripts/run.sh

test: install-dev browser-deps
	$(PY) -m pytest backend/tests interface/tests -q
	$(MAKE) --no-print-directory test-postgres

# The API suite again, on a real PostgreSQL server (Debian's packages, private cluster on loopback), with the
# races and identity rules (row locks and the unique normalised usernames on PostgreSQL).
test-postgres: install-dev
	@scripts/with_postgres.sh $(PY) -m pytest backend/tests/api backend/tests/reliability/test_races_and_identity.py \
		-q -p no:cacheprovider; rc=$$?; \
	if [ $$rc = 3 ]; then echo "PostgreSQL server not available: API suite on PostgreSQL skipped"; else exit $$rc; fi

clean:
	rm -rf $(VENV) backend/db.sqlite3 .pytest_cache
