# The two commands of the README: `make demo` and `make test`. Both build the venv when missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench robustness clean

$(STAMP): requirements-dev.txt layers/scope_core/requirements.txt pyproject.toml
	@test -x $(PY) || $$(tooling/find-python.sh) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .  # the operator CLI: pleo-scope-ops
	@touch $(STAMP)

demo: $(STAMP)  ## the main job on the embedded defaults (simulator + moto)
	$(PY) -m tooling.demo $(ARGS)

test: $(STAMP)  ## the test suite (any non-zero pytest exit fails, "no tests" (5) included)
	$(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)  ## benchmarks: walk vs bare httpx, one invocation end to end, large jobs, publish in units
	$(PY) -m benchmarks.bench_walk
	$(PY) -m benchmarks.bench_walk_floor
	$(PY) -m benchmarks.bench_e2e
	$(PY) -m benchmarks.bench_large
	$(PY) -m benchmarks.bench_publish

robustness: $(STAMP)  ## regenerate the README's robustness table (ARGS=--full for all of it)
	$(PY) -m tooling.robustness --write-readme $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .aws-sam
