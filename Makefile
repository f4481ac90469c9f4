# Two commands from a fresh clone: `make run` serves the demo, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lint format bench matrix browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the project's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every supported Python/Django pair (needs python3.11, 3.12 and 3.13 on PATH).
matrix: $(VENV)/.installed
	$(BIN)/nox

# Rewrites the generated tables of docs/benchmarks.md; BENCH_ARGS="--only client" for one.
bench: $(VENV)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

# What the browser tests need: Debian's Chromium, axe-core and the Nu HTML Checker (Java).
browser-deps:
	command -v chromium >/dev/null && command -v java >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq chromium default-jre-headless)
	test -f node_modules/axe-core/axe.min.js -a -f node_modules/vnu-jar/build/dist/vnu.jar \
		|| npm install --no-save --no-audit --no-fund axe-core vnu-jar

clean:
	rm -rf $(VENV) .nox node_modules build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
