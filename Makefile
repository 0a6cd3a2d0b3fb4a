# Every target sets up what it needs on a fresh machine: virtual environments are created
# and refreshed from the dependency files (stamp files record what they were built from).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.12; the app's environment and ministack's must match it.
PYTHON ?= $(shell command -v python3.12 || echo $$HOME/.pyenv/versions/3.12.1/bin/python3.12)
VENV := .venv
SAM_VENV := .venvs/sam
MS_VENV := .venvs/ministack
# The aws CLI the README's "Your first hour" uses (tests/e2e/test_first_hour.py runs it).
AWSCLI_VENV := .venvs/awscli
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export POWERTOOLS_TRACE_DISABLED := true
# No AWS region is exported: the operator's commands take the profile's (or AWS_REGION's), so a
# stack deployed in eu-west-3 is found there. sam validate needs one, any, to read the template.
VALIDATE_REGION := eu-west-1

# The suite runs on pytest-xdist workers. More workers than this machine's 2 cores: much of the
# suite waits rather than computes (the simulator paced at Lucca's limit, ministack, sam).
# --dist loadfile: each test file runs whole on one worker, as alone, and all of tests/e2e on
# one worker too: one ministack, one deploy, started first (tests/conftest.py). Files are handed
# out in collection order (chaos and integration, the long ones, before unit), not by their
# number of tests. WORKERS=0: one process, as before.
WORKERS ?= 4
DIST = --dist loadfile --no-loadscope-reorder
XDIST = -n $(WORKERS) $(DIST)
# make check: the unit tests that run in process. Left to make test: the simulation
# (tests/unit/sim) and the tests marked slow, the ones that start the Lucca simulator over HTTP
# (tests/conftest.py marks them by their `sim` fixture, wherever their file lives). 3 workers:
# as fast as 2 on a quiet machine (54 s), faster on a busy one (91 s against 99-130 s).
CHECK_WORKERS ?= 3
FAST_TESTS = tests/unit --ignore=tests/unit/sim -m "not slow"

.PHONY: help setup venvs lint format typecheck cfn-lint sam-validate checkov unit integration e2e test \
        check demo bench chaos sim year memory replay plan simulator clean mutate

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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

$(AWSCLI_VENV)/.stamp: local/requirements-awscli.txt
	test -x $(AWSCLI_VENV)/bin/python || $(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/pip install --quiet -r local/requirements-awscli.txt
	touch $@

# The four environments are independent: built at once (a fresh clone: ~70 s instead of ~100 s).
setup:  ## Create every environment
	@$(MAKE) --no-print-directory -j4 --output-sync=target venvs

venvs: $(VENV)/.stamp $(SAM_VENV)/.stamp $(MS_VENV)/.stamp $(AWSCLI_VENV)/.stamp
	@:

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
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region $(VALIDATE_REGION)

checkov: $(VENV)/.stamp  ## checkov on the template (zero failed checks, suppressions explained)
	$(VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

unit: $(VENV)/.stamp  ## Unit tests
	$(PY) -m pytest tests/unit -q $(XDIST)

integration: $(VENV)/.stamp  ## Handlers against moto and the simulator
	$(PY) -m pytest tests/integration -q -s

e2e: setup  ## The template deployed on ministack
	$(PY) -m pytest tests/e2e -q -s

test: setup lint typecheck cfn-lint sam-validate checkov  ## Every check (< 10 min on 2 cores)
	$(PY) -m pytest tests -q $(XDIST)

# Every step runs, even after a failure; a summary ends it, and the exit status is 1 if one failed.
check: $(VENV)/.stamp  ## The inner loop (< 2 min): ruff, mypy and the fast unit tests
	@started=$$SECONDS; summary=(); failed=(); \
	step() { local name=$$1 t0=$$SECONDS; shift; echo "--- $$name: $$*"; \
	  if "$$@"; then summary+=("  ok      $$name  $$((SECONDS - t0))s"); \
	  else summary+=("  FAILED  $$name  $$((SECONDS - t0))s"); failed+=("$$name"); fi; }; \
	step "ruff check" $(VENV)/bin/ruff check .; \
	step "ruff format" $(VENV)/bin/ruff format --check .; \
	step mypy $(VENV)/bin/mypy; \
	step "fast unit tests" $(PY) -m pytest $(FAST_TESTS) -q -n $(CHECK_WORKERS) $(DIST); \
	echo "=== make check: $$((SECONDS - started))s"; printf '%s\n' "$${summary[@]}"; \
	if [ $${#failed[@]} -gt 0 ]; then echo "=== FAILED: $${failed[*]}"; exit 1; fi; \
	echo "=== all passed (make test runs everything: slow, simulation, integration, chaos, e2e)"

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

# make sim SCENARIO=backlog ARGS="--sizes 1000,10000"   (backlog|week|neighbour|outage|faults|standing|all)
SCENARIO ?= all
sim: $(VENV)/.stamp  ## Weeks of operation on a virtual clock at production constants (tables + JSON)
	PYTHONHASHSEED=0 $(PY) -m sim $(SCENARIO) $(ARGS)

# make year ARGS="--weeks 4 --no-moto"   (52 weeks: 3-6 min to write, as long again in moto)
year: $(VENV)/.stamp  ## A year of ledger: what audit, export, digest and polls read, and its storage
	PYTHONHASHSEED=0 $(PY) -m sim.year $(ARGS)

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
