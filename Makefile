# hookline developer entry points. `make test` and `make demo` set up everything they need from scratch.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
BIN    := $(VENV)/bin
# Lambda runs python3.13: prefer pyenv's 3.13, then any python3.13 on PATH, then python3 (with a warning).
PYTHON_313 := $(or $(wildcard $(shell pyenv prefix 3.13.0 2>/dev/null)/bin/python3.13),$(shell command -v python3.13 2>/dev/null))
PYTHON ?= $(or $(PYTHON_313),python3)
export PATH := $(abspath $(BIN)):$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export POWERTOOLS_DEV ?= false

.PHONY: help venv lint typecheck validate unit test bench demo local build layer-requirements runtime-site sam-local clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-19s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt layers/shared/requirements.txt layers/shared/requirements-layer.txt pyproject.toml
	@if [ -z "$(PYTHON_313)" ]; then echo "warning: python3.13 not found (pyenv prefix 3.13.0 / PATH); falling back to $$($(PYTHON) --version). Lambda runs python3.13." >&2; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# Tests run the exact versions the layer ships (pins without their hashes: pip refuses hashed constraints).
	sed -e 's/ *\\$$//' -e '/--hash=/d' layers/shared/requirements-layer.txt > $(VENV)/layer-constraints.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c $(VENV)/layer-constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

venv: $(BIN)/.installed ## create .venv with the pinned dev dependencies

lint: venv ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy strict on layers/, functions/, the CLI, the local stack and scripts/
	$(BIN)/mypy layers/shared/resilience layers/shared/hookline
	MYPYPATH=cli:layers/shared $(BIN)/mypy cli/hookline_cli cli/hookline_local
	MYPYPATH=cli:layers/shared:. $(BIN)/mypy scripts
	@# Each function's app.py is its own top-level module `app`: check them one at a time.
	@shopt -s nullglob; for handler in functions/*/app.py; do echo "mypy $$handler"; $(BIN)/mypy "$$handler" || exit 1; done

validate: venv ## sam validate --lint (cfn-lint)
	$(BIN)/sam validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

unit: venv ## pytest only
	$(BIN)/pytest -q

test: lint typecheck validate ## everything CI runs: lint, types, template, tests
	$(BIN)/pytest -q

bench: venv ## run all benchmarks (prints the README tables; about 25 minutes on 2 cores)
	$(BIN)/python bench/breaker_fleet.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/health.py
	$(BIN)/python bench/pacing.py
	$(BIN)/python bench/history_cost.py
	mkdir -p .hookline
	$(BIN)/python bench/scale.py --repeat 3 --json .hookline/scale.json
	$(BIN)/python bench/cost.py --scale .hookline/scale.json

build: venv ## sam build (python3.13 from .venv on PATH; the layer's makefile build needs it)
	$(BIN)/sam build --template template.yaml

layer-requirements: venv ## resolve layers/shared/requirements.txt into requirements-layer.txt (needs PyPI)
	$(BIN)/python scripts/layer_requirements.py

runtime-site: venv ## .hookline/runtime-python: the Lambda runtime's own packages, to run .aws-sam/build as Lambda does
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --upgrade --only-binary=:all: --platform any \
		--python-version 3.13 --implementation py --abi none --target .hookline/runtime-python \
		-r layers/shared/requirements-runtime.txt

sam-local: venv ## sam build (x86_64) + sam local invoke/start-lambda against the local stack, in Docker (root)
	$(BIN)/python -m scripts.sam_local

demo: venv ## run the demo on the embedded local stack (no AWS account, no Docker)
	$(BIN)/hookline demo

local: venv ## start the embedded local stack until Ctrl-C
	$(BIN)/hookline local up

clean: ## remove build output and caches
	rm -rf .aws-sam .hookline .mypy_cache .ruff_cache .pytest_cache
