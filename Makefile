# faceweb — `make run` installs and starts the app; `make test` installs and runs every check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
POSTGRES_TEST_URL ?= postgres://postgres@127.0.0.1:5432/faceweb

.PHONY: install install-test run test lint test-sqlite test-postgres clean

# What the app needs (make run); the test tools come only with make test.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	PY=$(PY) scripts/install-test-deps
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.test-installed

run: install
	scripts/run

lint: install-test
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run
	PY=$(PY) scripts/check-deploy
	$(PY) manage.py spectacular --fail-on-warn --file /dev/null

test-sqlite: install-test
	$(PY) -m pytest

# The same suite on PostgreSQL; the pure-PyTorch tests do not touch a database.
test-postgres: install-test
	DATABASE_URL=$(POSTGRES_TEST_URL) $(PY) -m pytest --ignore=tests/ml

test: lint test-sqlite test-postgres

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
