# The two commands of the README: `make demo` and `make test`. Both build the venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The SAM CLI and checkov pin their own boto3 and friends: each has a venv of its own.
SAM_VENV ?= .sam-venv
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_VENV ?= .checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: demo test lint build checkov local-stack bench bench-quick robustness robustness-light chaos chaos-docs clean

$(STAMP): requirements-dev.txt layers/scope_core/requirements.txt pyproject.toml
	@test -x $(PY) || $$(tooling/build/find-python.sh) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .  # the operator CLI: pleo-scope-ops
	@touch $(STAMP)

$(SAM_STAMP): .ci/requirements-sam.txt
	@test -x $(SAM_VENV)/bin/python || $$(tooling/build/find-python.sh) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r .ci/requirements-sam.txt
	@touch $(SAM_STAMP)

$(CHECKOV_STAMP): .ci/requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $$(tooling/build/find-python.sh) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r .ci/requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

demo: $(STAMP)  ## the main job on the embedded defaults (simulator + moto); keeps the scope in out/demo/
	$(PY) -m tooling.testkit.demo $(ARGS)

test: $(STAMP) $(SAM_STAMP)  ## the test suite (any non-zero pytest exit fails, "no tests" (5) included)
	SAM_CLI=$(SAM_VENV)/bin/sam $(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

build: $(STAMP) $(SAM_STAMP)  ## sam build as declared (arm64) and the layer's checks
	SAM_CLI=$(SAM_VENV)/bin/sam $(PY) -m tooling.build.artifact $(ARGS)

local-stack: $(STAMP)  ## the whole application on the stand-ins, function included, until Ctrl-C; writes out/ops.env (docs/operating.md)
	$(PY) -m tooling.testkit.local_sam $(ARGS)

checkov: $(CHECKOV_STAMP)  ## the security scan CI runs over the template
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

bench: $(STAMP) $(SAM_STAMP)  ## every benchmark, one after the other (long: bench_large walks 1M items)
	@echo "make bench runs every benchmark one after the other: long (bench_large walks a 1M-item job)."
	@echo "Quicker: make bench-quick (a few minutes), or one of: python -m benchmarks.bench_cold_start,"
	@echo "  bench_walk, bench_e2e, bench_large --items 100000. Ctrl-C now to stop; starting in 10 s."
	@sleep 10
	SAM_CLI=$(SAM_VENV)/bin/sam $(PY) -m benchmarks.bench_cold_start
	$(PY) -m benchmarks.bench_walk
	$(PY) -m benchmarks.bench_walk_floor
	$(PY) -m benchmarks.bench_e2e
	$(PY) -m benchmarks.bench_large
	$(PY) -m benchmarks.bench_publish
	$(PY) -m benchmarks.bench_limiter

bench-quick: $(STAMP) $(SAM_STAMP)  ## the benchmarks that take minutes: cold start, walk, one invocation
	SAM_CLI=$(SAM_VENV)/bin/sam $(PY) -m benchmarks.bench_cold_start
	$(PY) -m benchmarks.bench_walk
	$(PY) -m benchmarks.bench_e2e
	$(PY) -m benchmarks.bench_limiter

robustness: $(STAMP)  ## regenerate docs/robustness.md's robustness table (the full matrix)
	$(PY) -m tooling.reports.robustness --full --write-docs $(ARGS)

robustness-light: $(STAMP)  ## print the light matrix the tests run (the docs are left alone)
	$(PY) -m tooling.reports.robustness $(ARGS)

chaos: $(STAMP)  ## the chaos soak: large jobs through the state machine under every fault (~5 min); prints its table
	$(PY) -m tooling.reports.chaos $(ARGS)

chaos-docs: $(STAMP)  ## the chaos soak, its table written into docs/robustness.md
	$(PY) -m tooling.reports.chaos --write-docs $(ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .aws-sam
