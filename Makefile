# failfirst — every target installs what it needs: `make test` and `make html`
# work on a fresh clone with only python3, make and git.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv: the one on PATH, else a private copy installed with python3 -m pip.
UV_BOOT := .uv-bootstrap
UV := $(shell command -v uv 2>/dev/null || echo $(UV_BOOT)/bin/uv)
RUN := $(UV) run --locked --no-sync
PYTEST := $(RUN) python -m pytest

.PHONY: help sync test lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'
	@# The per-failure-mode targets are generated (fm_targets below): list the ones that exist.
	@$(foreach n,$(FM_NUMBERS),printf '  %-20s %s\n' test-fm$(n) 'FM_$(FM_PAD_$(n)): reproduce it (repro tests)' \
	  test-fm$(n)-fix 'FM_$(FM_PAD_$(n)): prove its guardrail (prevent tests)' \
	  test-fm$(n)-recover 'FM_$(FM_PAD_$(n)): its recovery (recover tests)';)

$(UV_BOOT)/bin/uv:
	python3 -m venv $(UV_BOOT)
	$(UV_BOOT)/bin/python -m pip install --quiet --disable-pip-version-check uv

# The environment is rebuilt whenever the lock or the project metadata change.
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

sync: .venv/.synced ## install uv if missing, then the locked environment

# Two pytest workers (pytest-xdist): many tests wait on real processes (queues, servers,
# kills), so two at once finish sooner even on two cores. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: .venv/.synced ## every test: unit, bundles, the book's tooling, examples/shop (chapters: make html; PostgreSQL: make test-pg)
	$(PYTEST) -q -m "not postgresql" $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

test-book: .venv/.synced ## every chapter executed as a test (pytest book/), as make html executes them
	$(PYTEST) -q -m "not postgresql" book

# test-fmN: reproduce FM_0NN; test-fmN-fix: prove its guardrail; test-fmN-recover: its
# recovery. One set per bundle under failure_modes/, N without leading zeros (test-fm10).
# In numeric order (make help lists them so: test-fm2 before test-fm10).
FM_NUMBERS := $(shell ls -d failure_modes/FM_[0-9][0-9][0-9]_* 2>/dev/null | sed -E 's|^failure_modes/FM_0*([0-9]+)_.*|\1|' | sort -n -u)
define fm_targets
FM_PAD_$(1) := $(shell printf %03d $(1))
test-fm$(1): .venv/.synced
	$$(PYTEST) -q failure_modes/FM_$$(FM_PAD_$(1))_*/tests/test_repro_fm$$(FM_PAD_$(1)).py
test-fm$(1)-fix: .venv/.synced
	$$(PYTEST) -q failure_modes/FM_$$(FM_PAD_$(1))_*/tests/test_prevent_fm$$(FM_PAD_$(1)).py
test-fm$(1)-recover: .venv/.synced
	$$(PYTEST) -q failure_modes/FM_$$(FM_PAD_$(1))_*/tests/test_recover_fm$$(FM_PAD_$(1)).py
.PHONY: test-fm$(1) test-fm$(1)-fix test-fm$(1)-recover
endef
$(foreach n,$(FM_NUMBERS),$(eval $(call fm_targets,$(n))))

lint: .venv/.synced ## ruff
	$(RUN) ruff check src failure_modes tests examples book/_tools book/conftest.py conf

clean: ## remove build output and caches (keeps the environment)
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---------------------------------------------------------------- the book
# Chapters are MyST notebooks in book/; conf/ holds the Sphinx configuration.
SPHINX := $(RUN) sphinx-build -c conf
.PHONY: html preview notebooks lab test-site

# The gate: a fresh environment (-E), warnings as errors (-W), nitpicky (-n),
# every chapter executed (conf.py forces it), every failing chapter reported
# (--keep-going). -j auto: myst-nb is parallel-read safe, and with forced
# execution each chapter runs in its own kernel and writes only its own files,
# so chapters execute side by side.
html: .venv/.synced ## the book with every chapter executed: the correctness gate
	rm -rf _build/html _build/jupyter_execute
	$(SPHINX) -E -W -n --keep-going -j auto book _build/html

# For writers: only changed chapters are re-executed (jupyter-cache). Serial,
# because parallel readers would write the one jupyter-cache database at once.
preview: .venv/.synced ## the book, fast: cached execution, for writing (never the gate)
	$(SPHINX) -n --keep-going -D nb_execution_mode=cache book _build/preview/html

notebooks: .venv/.synced ## every chapter as an executed .ipynb in _build/notebooks/
	$(RUN) python -m failfirst_book.notebooks _build/notebooks

# The `lab` group is optional; the settings make .md chapters open as notebooks.
lab: .venv/.synced ## JupyterLab on book/, .md chapters opening as notebooks (jupytext)
	$(UV) sync --locked --group lab
	mkdir -p .venv/share/jupyter/lab/settings
	cp conf/lab-overrides.json .venv/share/jupyter/lab/settings/overrides.json
	$(UV) run --locked --no-sync jupyter lab --notebook-dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

# First the checker's own tests (a planted defect per check), then the site.
test-site: .venv/.synced ## check _build/html in headless Chromium, offline (after make html)
	$(PYTEST) -q -p no:cacheprovider book/_tools/tests/check_site_test.py
	$(RUN) python -m failfirst_book.check_site _build/html

# ---------------------------------------------------------------- the explorer
# The catalogue's proofs timed on one core (budget: two minutes; it fails past it), the
# reduction per failure mode, random sampling beside PCT, FM_001 beside Hypothesis.
# The Performance chapter publishes _build/bench/explore.json.
.PHONY: bench-explore pin-counts
bench-explore: .venv/.synced ## the catalogue's proofs on one core, reduction ratios, PCT vs random, FM_001
	$(RUN) python -m failfirst.bench.explore_bench

pin-counts: .venv/.synced ## rewrite tests/pinned_counts.json (review the diff: the reduction changed)
	$(RUN) python -m failfirst.bench.explore_bench --pin

# Partial-order reduction: the per-failure-mode rows alone, and the soundness
# comparison on whole scenarios (make test runs it on scenarios cut to a few jobs).
.PHONY: bench-por test-por
bench-por: .venv/.synced ## per failure mode: schedules with symmetry alone and with sleep sets
	$(RUN) python -m failfirst.bench.explore_bench --per-fm-only

test-por: .venv/.synced ## sleep sets vs symmetry alone on whole scenarios, 1 and 2 faults (slow)
	FAILFIRST_POR_FULL=1 $(PYTEST) -q tests/test_por.py

# ---------------------------------------------------------------- real runs
# Worker processes on a SQLite file: SIGKILLed at random (stress), and timed
# beside huey's SqliteHuey (bench). Figures come from here, never from tests.
.PHONY: stress bench
stress: .venv/.synced ## 10,000 jobs, 2 worker processes, 20 SIGKILLs at seeded points of progress: lost 0, duplicates 0
	$(RUN) python -m failfirst.bench.stress_gate --db _build/stress/stress.db --jobs 10000 --workers 2 --faults 20 --min-faults 20

bench: .venv/.synced ## jobs/s on a SQLite file, 1 and 2 workers: failfirst beside huey
	$(RUN) python -m failfirst.bench.throughput --out _build/bench/throughput.json

# ---------------------------------------------------------------- PostgreSQL (#12)
# The tests find a server at $FAILFIRST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test)
# and work in a database of their own; without a server they skip (FAILFIRST_REQUIRE_PG=1: fail).
# The differential proof runs at the catalogue's default bounds (FAILFIRST_PG_MAX_FAULTS=1: a quick look).
.PHONY: test-pg test-pg-faults stress-pg bench-pg pg-server pg-server-stop
test-pg: .venv/.synced ## PostgreSQL: differential proof (every failure mode, default bounds) and its control, the store conformance suite, isolation, refusals, real faults
	$(PYTEST) -q -m postgresql tests/test_postgresql.py tests/test_postgresql_faults.py tests/test_bench_pg.py \
	  tests/test_store_conformance.py tests/test_differential_control.py

# Faults are planned by progress (jobs claimed), not by the clock: as many on a loaded machine.
test-pg-faults: .venv/.synced ## only the real faults: terminated connections, server crash, partition, SIGKILL stress
	$(PYTEST) -q -m postgresql tests/test_postgresql_faults.py tests/test_postgresql.py -k "faults or stress_on_postgresql"

# The same driver as make stress, on a private server in _build/pg-stress (removed afterwards,
# and on SIGTERM or Ctrl-C too).
stress-pg: .venv/.synced ## 10,000 jobs on a private PostgreSQL server, 12 mixed faults (SIGKILL, terminate, server crash)
	$(RUN) python -m failfirst.bench.stress_gate --pg-folder _build/pg-stress --jobs 10000 --workers 4 --fault mixed --faults 12 --min-faults 12

# Throwaway databases on the server of the tests ($FAILFIRST_PG_URL); never stops it.
# BENCH_PG_ARGS: more options (CI: --jobs 2500, half the default, to fit its time budget).
BENCH_PG_ARGS ?=
bench-pg: .venv/.synced ## jobs/s on PostgreSQL, 1, 2 and 4 workers: failfirst beside procrastinate and pgqueuer, and a profile
	$(RUN) python -m failfirst.bench.throughput_pg --profile --out _build/bench/throughput_pg.json $(BENCH_PG_ARGS)

pg-server: .venv/.synced ## start a throwaway PostgreSQL server in _build/pg (127.0.0.1:55432, local connections only)
	$(RUN) python -m failfirst.store.pgtools serve _build/pg 55432

pg-server-stop: .venv/.synced ## stop the server that make pg-server started
	$(RUN) python -m failfirst.store.pgtools stop _build/pg

# ---------------------------------------------------------------- FM_008 backoff
# The contention model behind FM_008's table: 5 policies x N = 10..50 x 100 seeds.
# The chapter writes the same file at build time.
.PHONY: fm008-backoff
fm008-backoff: .venv/.synced ## FM_008: calls and completion per backoff policy -> _build/fm008/backoff.json
	$(RUN) python -m failure_modes.FM_008_thundering_herd.contention --out _build/fm008/backoff.json
# ---------------------------------------------------------------- peers (#13, #20)
# The crash experiment against the queues people run (book/peers.md): every configuration
# under every fault that applies to it (kill@claimed, kill@effect, kill@backoff,
# kill@prefetched, ...). Needs Redis, RabbitMQ and PostgreSQL on 127.0.0.1 (.ci/run starts
# those that are not running). make peers is CI size (one seed, few jobs, a few minutes on
# 2 cores); make peers-full runs PEERS_FULL_SEEDS seeds for stable figures.
PEERS_JOBS ?= 6
PEERS_SEEDS ?= 1
PEERS_PARALLEL ?= 2
PEERS_FAULTS ?=
PEERS_FULL_JOBS ?= 12
PEERS_FULL_SEEDS ?= 5
PEERS_FAULTS_ARG = $(if $(PEERS_FAULTS),--faults $(PEERS_FAULTS))
.PHONY: peers peers-full
peers: .venv/.synced ## every peer configuration x every applicable fault, CI size: _build/peers/results.json
	$(RUN) failfirst peers --jobs $(PEERS_JOBS) --seeds $(PEERS_SEEDS) --parallel $(PEERS_PARALLEL) $(PEERS_FAULTS_ARG) --out _build/peers/results.json

peers-full: .venv/.synced ## the same with PEERS_FULL_SEEDS seeds (stable figures): _build/peers/results.json
	$(RUN) failfirst peers --full --jobs $(PEERS_FULL_JOBS) --seeds $(PEERS_FULL_SEEDS) --parallel $(PEERS_PARALLEL) $(PEERS_FAULTS_ARG) --out _build/peers/results.json

# ---------------------------------------------------------------- mutation check (harden)
# Planted bugs (tests/mutation/mutations.py, each one line of what it breaks), applied
# one at a time to a temporary copy of the tree; fails when the fast tests miss one.
.PHONY: mutate
MUTATE_ARGS ?=
mutate: .venv/.synced ## apply each curated planted bug to a copy of the tree; fail if one survives: _build/mutate/results.json
	$(RUN) python tests/mutation/run.py --out _build/mutate/results.json $(MUTATE_ARGS)
