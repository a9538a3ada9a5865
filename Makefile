# CryptoSmartTrader — one entry point per job. `make demo` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
UV := $(shell command -v uv 2>/dev/null)
PYTEST_WORKERS ?= 2
# Python caches each module's compiled bytecode (__pycache__, git-ignored) at its first import;
# an environment that turns that off (PYTHONDONTWRITEBYTECODE) makes every `cst` command, test
# worker and Lambda handler import compile its libraries again (about half of a `cst` start-up).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install web web-test demo test suite lint typecheck layers unit integration infrastructure e2e bench synth deploy pr

help:
	@echo "make demo   - run the full pipeline on an embedded local AWS (moto) over real data"
	@echo "make test   - lint, type-check, layering contracts and all four test suites"
	@echo "make synth  - synthesize the CDK app (cdk-nag runs on every synth)"
	@echo "make deploy - build the dashboard, deploy the stack (your AWS credentials), publish the dashboard"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make web    - build the web dashboard (web/dist; npm ci && npm run build)"

install:
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet uv; fi
	uv sync --frozen --all-extras

# The dashboard's locked toolchain (package-lock.json): the e2e tests, `cst api serve` and
# `cst web publish` use the built files in web/dist (the CDK stack itself holds no file of it).
web:
	cd web && npm ci --no-audit --no-fund && npm run build

web-test: web
	cd web && npm test

demo: install web
	uv run cst demo

lint: install
	uv run ruff check .
	uv run ruff format --check .

typecheck: install
	uv run mypy

layers: install
	uv run lint-imports

unit: install
	uv run pytest tests/unit -q

integration: install
	uv run pytest tests/integration -q -n $(PYTEST_WORKERS)

infrastructure: install
	uv run pytest tests/infrastructure -q

e2e: install web
	uv run pytest tests/e2e -q

# The checks and the suite run side by side in one sub-make (`TEST_JOBS` at a time, 3 by
# default: the suite and two checks). pytest's workers wait on subprocesses, sockets and the
# embedded AWS for about a quarter of their time, and mypy alone keeps one core busy for about a
# minute on a cold cache: run one after the other, that minute was added to the suite's. Each
# target's output is printed whole when it ends; every target runs to its end (--keep-going),
# so one run shows every failing check, and any failure fails `make test`.
TEST_JOBS ?= 3

test:
	$(MAKE) --no-print-directory --keep-going -j $(TEST_JOBS) --output-sync=target suite lint typecheck layers web-test

# The suite alone (the e2e dashboard tests read the built dashboard in web/dist).
suite: install web
	uv run pytest -q -n $(PYTEST_WORKERS) --durations=15

pr: test

synth: install
	npx --yes aws-cdk@2 synth --quiet

# The stack, then the dashboard's files into the bucket the stack created (it copies none itself).
deploy: install web
	npx --yes aws-cdk@2 deploy --all
	uv run cst web publish

bench: install web
	@for b in bench/bench_*.py; do echo "== $$b"; uv run python $$b || exit 1; done
