# yikatong — two commands: `make run` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
DEMO_RESIDENTS ?= 5000
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# pytest's exit code 5 ("no tests collected") is a broken selection, never a pass.
PYTEST = $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

.PHONY: run test test-pg lint typecheck install install-dev seed bench messages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, migrate, seed demo data when the database is empty, serve on :8000
run: install
	@mkdir -p var
	$(BIN)/yikatong db upgrade
	$(BIN)/yikatong demo seed --if-empty --residents $(DEMO_RESIDENTS)
	$(BIN)/yikatong serve --port $(PORT)

## make test: ruff (format + lint), mypy, the whole pytest suite on SQLite
test: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(PYTEST)

## make test-pg: the same suite against PostgreSQL
test-pg: install-dev
	YIKATONG_TEST_DATABASE_URL=$(PG_TEST_URL) $(PYTEST)

lint: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install-dev
	$(BIN)/mypy

seed: install
	$(BIN)/yikatong demo seed --residents $(DEMO_RESIDENTS)

## make bench: the figures quoted in docs/performance.md
bench: install-dev
	$(BIN)/python -m bench.crypto_bench
	$(BIN)/python -m bench.fields_bench
	$(BIN)/python -m bench.seed_bench
	$(BIN)/python -m bench.qr_bench
	$(BIN)/python -m bench.verify_http_bench
	$(BIN)/python -m bench.registry_bench --residents 100000

## make messages: extract translatable strings and merge them into the zh_CN catalogue
messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k N_ -o yikatong/web/locales/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i yikatong/web/locales/messages.pot -d yikatong/web/locales -l zh_CN --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
