# Every target sets up what it needs on a fresh machine: virtual environments are created
# and refreshed from the dependency files (stamp files record what they were built from).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.12; the app's environment and ministack's must match it.
PYTHON ?= $(shell command -v python3.12 || echo $$HOME/.pyenv/versions/3.12.1/bin/python3.12)
VENV := .venv
SAM_VENV := .venvs/sam
MS_VENV := .venvs/ministack
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export POWERTOOLS_TRACE_DISABLED := true
export AWS_DEFAULT_REGION ?= eu-west-1

.PHONY: help setup lint format typecheck cfn-lint sam-validate checkov unit integration e2e test \
        demo bench chaos sim memory replay plan simulator clean mutate

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.stamp: pyproject.toml layers/domain/requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(SAM_VENV)/.stamp: local/requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet -r local/requirements-sam.txt
	touch $@

$(MS_VENV)/.stamp: local/requirements-ministack.txt
	test -x $(MS_VENV)/bin/python || $(PYTHON) -m venv $(MS_VENV)
	$(MS_VENV)/bin/pip install --quiet -r local/requirements-ministack.txt
	touch $@

setup: $(VENV)/.stamp $(SAM_VENV)/.stamp $(MS_VENV)/.stamp  ## Create every environment

lint: $(VENV)/.stamp  ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.stamp  ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.stamp  ## mypy (strict) on the domain package
	$(VENV)/bin/mypy

cfn-lint: $(VENV)/.stamp  ## cfn-lint on the template
	$(VENV)/bin/cfn-lint template.yaml

sam-validate: $(SAM_VENV)/.stamp  ## sam validate --lint
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

checkov: $(VENV)/.stamp  ## checkov on the template (zero failed checks, suppressions explained)
	$(VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

unit: $(VENV)/.stamp  ## Unit tests
	$(PY) -m pytest tests/unit -q

integration: $(VENV)/.stamp  ## Handlers against moto and the simulator
	$(PY) -m pytest tests/integration -q -s

e2e: setup  ## The template deployed on ministack
	$(PY) -m pytest tests/e2e -q -s

test: setup lint typecheck cfn-lint sam-validate checkov  ## Every check
	$(PY) -m pytest tests -q

# make demo DOCUMENTS=300 WINDOW=6 FAULT_RATE=0.05 KEEP=1
DOCUMENTS ?= 300
WINDOW ?= 6
FAULT_RATE ?= 0.03
KEEP ?= 0
demo: setup  ## The real template on ministack against the simulator, with live progress
	$(PY) -m local.demo --documents $(DOCUMENTS) --window $(WINDOW) --fault-rate $(FAULT_RATE) \
		$(if $(filter 1 yes true,$(KEEP)),--keep,)

bench: $(VENV)/.stamp  ## Requests per invoice, drain time and 429s against a naive baseline
	$(PY) -m bench

chaos: $(VENV)/.stamp  ## The large chaos run (>= 1,000 documents, >= 10 % faults)
	CHAOS_DOCUMENTS=1000 CHAOS_FAULT_RATE=0.12 $(PY) -m pytest tests/chaos -q -s

# make mutate MODULE=ledger ARGS="--core"   (budget|listing|ledger|poller|processor|wiring.poller|wiring.processor|models;
#   ARGS: --core, --survivors, --keep or mutant names: see mutation/README.md)
MODULE ?=
mutate: $(VENV)/.stamp  ## Mutation testing of one domain module with mutmut (not part of test)
	@test -n "$(MODULE)" || { echo "make mutate MODULE=<budget|listing|ledger|...>"; exit 2; }
	$(PY) mutation/run.py $(MODULE) --max-children 1 $(ARGS)

# make sim SCENARIO=backlog ARGS="--sizes 1000,10000"   (backlog|week|neighbour|outage|faults|all)
SCENARIO ?= all
sim: $(VENV)/.stamp  ## Weeks of operation on a virtual clock at production constants (tables + JSON)
	PYTHONHASHSEED=0 $(PY) -m sim $(SCENARIO) $(ARGS)

memory: $(VENV)/.stamp  ## Each function's peak memory and CPU work, and the memory size they call for
	$(PY) -m bench.memory

# make replay ARGS="--dry-run"  (the stack's DLQ and queue come from STACK or the flags)
replay: $(VENV)/.stamp  ## Move dead-lettered documents back to the queue (dry run first)
	$(VENV)/bin/cleemy-booker replay $(ARGS)

plan: $(VENV)/.stamp  ## Dry run against a tenant: make plan ARGS="--base-url https://x.ilucca.net"
	$(VENV)/bin/cleemy-booker plan $(ARGS)

simulator: $(VENV)/.stamp  ## Run the Lucca simulator on port 8900
	$(PY) -m local.lucca_simulator --port 8900 --invoices 200 --seed 7

clean:  ## Remove environments and build output
	rm -rf $(VENV) .venvs .aws-sam .pytest_cache .mypy_cache .ruff_cache
