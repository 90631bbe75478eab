# Strata developer commands. The virtualenv lives in .venv; every target creates it if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov cannot share .venv (it pins packaging<24, pytest needs >=24): its own virtualenv, with
# the version pinned in pyproject.toml's chart-scan extra.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_PIN    = $(shell $(PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["chart-scan"][0])')

.DEFAULT_GOAL := help
.PHONY: help venv run test test-unit test-integration test-chart test-images e2e-cluster \
        e2e-kind lint fmt bench bench-tools bench-critical bench-ml bench-cache bench-backup images clean \
        scan-chart chart-docs chart-package chart-push mutation

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# Debian's python3 makes venvs only with python3-venv: when that fails, tests/e2e/packages.sh
# installs it as root (as .ci/run does) or names it, and the venv is made again.
VENV_RETRY = bash tests/e2e/packages.sh python3-venv && $(PYTHON) -m venv --clear
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { $(VENV_RETRY) $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(CHECKOV_STAMP): pyproject.toml
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV) || { $(VENV_RETRY) $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "$(CHECKOV_PIN)"
	touch $(CHECKOV_STAMP)

venv: $(STAMP) $(CHECKOV_STAMP) ## create .venv with every extra installed (and .venv-checkov)

run: $(STAMP) ## run the whole stack locally (throwaway PostgreSQL + Redis, all services)
	$(BIN)/strata run

test: $(STAMP) $(CHECKOV_STAMP) ## run the whole suite: unit, integration (real PostgreSQL/Redis), chart
	$(BIN)/pytest tests/unit tests/integration tests/chart

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration

test-chart: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/pytest tests/chart

# One file at a time, each with the tests that run it in process (tests/mutation/run.py);
# CPU-heavy, so niced. MUTATION_TARGETS picks some of: ledger idempotency cache-store ml-query.
MUTATION_TARGETS ?=
mutation: $(STAMP) ## mutmut over the ledger, idempotency, cache store and ml query builder
	nice -n 15 $(BIN)/python -m tests.mutation.run $(MUTATION_TARGETS)

scan-chart: $(STAMP) $(CHECKOV_STAMP) ## checkov over the rendered chart (accepted findings: charts/strata/checkov-skips.yaml)
	$(BIN)/pytest tests/chart/test_checkov.py

chart-docs: $(STAMP) ## regenerate the chart README's parameter tables and the schema's descriptions from values.yaml (node, npm)
	$(BIN)/python -m tests.chart.chart_docs

# The published chart: helm package into dist/charts, then helm push to an OCI registry
# (tests/chart/publish.py; the pinned helm of tests/chart/helm_binary.py unless HELM is set).
# REGISTRY is host[:port]; CHART_REPO the path in it; a loopback registry is plain HTTP.
# A version the registry already holds is refused (CHART_PUSH_FLAGS=--overwrite forces it).
REGISTRY   ?=
CHART_REPO ?= strata
CHART_PUSH_FLAGS ?=
chart-package: $(STAMP) ## helm package charts/strata into dist/charts
	$(BIN)/python -m tests.chart.publish package --dest dist/charts

chart-push: $(STAMP) ## helm push the packaged chart to oci://$(REGISTRY)/$(CHART_REPO) (make chart-push REGISTRY=host:port)
	@test -n "$(REGISTRY)" || { echo "make chart-push REGISTRY=host[:port] [CHART_REPO=strata]"; exit 2; }
	$(BIN)/python -m tests.chart.publish push --dest dist/charts --registry "$(REGISTRY)" --path "$(CHART_REPO)" $(CHART_PUSH_FLAGS)

# The e2e targets install the Debian packages they need when run as root, like .ci/run, and
# otherwise stop naming them (tests/e2e/packages.sh); the scripts start dockerd themselves.
test-images: $(STAMP) ## build and run the three images with a Docker engine
	bash tests/e2e/packages.sh docker.io:dockerd debootstrap
	$(BIN)/pytest tests/e2e/images

e2e-cluster: $(STAMP) ## install the chart on a real single-node Kubernetes built on this host
	bash tests/e2e/cluster/run.sh

e2e-kind: $(STAMP) ## kind cluster built from Go modules (cached), the same proofs + NetworkPolicies
	bash tests/e2e/kind.sh

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix services tests
	$(BIN)/ruff format services tests

bench: bench-critical bench-ml bench-cache ## all benchmarks (not tests): Strata beside same-run references

# The load tool and the references the benchmarks run beside Strata (Debian packages; CI does
# not run the benchmarks, so .ci/run does not install them). As root tests/e2e/packages.sh
# installs what is missing, like .ci/run; otherwise it names the packages and the benchmarks
# go on (exit 2 is "missing, not root"). Without webdis bench-cache skips that one reference
# and says so.
BENCH_PACKAGES := wrk:wrk postgresql-client:pgbench redis-tools:redis-benchmark webdis:webdis
bench-tools: ## install wrk, pgbench, redis-benchmark and webdis (Debian) if missing
	@bash tests/e2e/packages.sh $(BENCH_PACKAGES) || [ $$? = 2 ]

bench-critical: $(STAMP) bench-tools
	$(BIN)/python -m tests.bench.bench_critical

bench-ml: $(STAMP) bench-tools
	$(BIN)/python -m tests.bench.bench_ml

bench-cache: $(STAMP) bench-tools
	$(BIN)/python -m tests.bench.bench_cache

bench-backup: $(STAMP) ## pgBackRest backup and restore durations of a 100,000-transfer ledger
	$(BIN)/python -m tests.bench.bench_backup

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info mutants
