# Sunshine Credit Assistant. `make run` starts everything; `make test` tests everything.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL := var/models/sunshine.tar.gz
# Rasa keeps trained components in a cache keyed by their data and settings; one
# cache per user (not per checkout) lets a fresh clone reuse what is already trained.
# The face-evaluation tests keep the evaluation set's encodings there too (by image hash and encoder settings).
export SUNSHINE_CACHE_DIR ?= $(HOME)/.cache/sunshine
export RASA_CACHE_DIRECTORY ?= $(SUNSHINE_CACHE_DIR)/rasa
# Python writes its bytecode caches (__pycache__, ignored by git) even where PYTHONDONTWRITEBYTECODE
# is set, as on these machines: `make test` starts about 150 Python processes and pytest rewrites every
# test module in each of its own; compiling all of that anew on every start cost about 40 s of CPU
# (pytest's collection alone 9.8 s -> 5.5 s). BYTECODE=0 leaves the variable as it is.
BYTECODE ?= 1
ifeq ($(BYTECODE),1)
unexport PYTHONDONTWRITEBYTECODE
endif
TRAINING_DATA := $(shell find bot nlu_data -type f \( -name '*.yml' -o -name '*.yaml' -o -name '*.txt' \) -not -path 'bot/actions/*' 2>/dev/null)

.PHONY: setup run demo test test-fast test-clock test-postgres lint train chat bench soak nlu-report clean help audit
.DEFAULT_GOAL := help

help:
	@echo "make run    start every process (Redis if needed, Rasa, actions, web, worker, emulators)"
	@echo "make test   run the whole test suite"
	@echo "make test-fast  the tests that need no whole stack (unit, web, security, NLU data): ~2 min"
	@echo "make test-clock the fast tier with the clock moved to 2031, on SQLite (no test may depend on the calendar)"
	@echo "make test-postgres  make test on PostgreSQL (DATABASE_URL, default the local server's database test)"
	@echo "make bench  run the benchmarks; figures go to var/bench/results.json"
	@echo "make soak   10 minutes of simulated WeChat users against the whole stack (capacity, memory)"
	@echo "make lint   static checks: ruff (rules and format), mypy, import layers"
	@echo "make nlu-report  cross-validate the NLU and test it on the held-out and blind sets; tables go to the README"
	@echo "make demo   the bank's story end to end on the running stack (or one it starts), with its timings"
	@echo "make chat   talk to the bot as a WeChat user (reads lines from standard input)"
	@echo "make setup  create .venv and install (called by run and test)"
	@echo "make train  train the Rasa model if the training data changed"
	@echo "make audit  known vulnerabilities of the installed packages (pip-audit) and ruff's security rules"

setup: $(STAMP)

# The packages are installed by uv (into the venv, by pip): the same pinned set pip would resolve,
# in about 20 seconds from its cache instead of pip's two and a half minutes. Compiled to bytecode
# at install, as pip does (uv does not by default): otherwise, where PYTHONDONTWRITEBYTECODE is set
# (as on these machines), every process compiles what it imports anew: Rasa 7 s of its 15 s start.
UV := uv==0.13.9
UV_PIP := $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY)

$(STAMP): requirements.txt requirements-face.txt scripts/find-python310.sh
	@PY310="$$(scripts/find-python310.sh)" || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then \
		rm -rf $(VENV) && "$$PY310" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check $(UV)
	$(UV_PIP) 'pip<26' 'setuptools<71' wheel -r requirements.txt -r requirements-face.txt
	$(UV_PIP) --no-deps face_recognition==1.3.0
	@touch $(STAMP)

train: $(MODEL)

$(MODEL): $(STAMP) $(TRAINING_DATA)
	@mkdir -p var/models
	$(VENV)/bin/rasa train --config bot/config.yml --domain bot/domain.yml --data bot/data nlu_data \
		--out var/models --fixed-model-name sunshine
	@touch $(MODEL)

# Development: the demo officers, village and WeChat bindings are loaded (SUNSHINE_DEMO on unless
# .env or the environment say otherwise); `make run DEMO=0` starts without them. Production refuses them.
# With the demo, FACE_CHALLENGE_DEMO_ORDER defaults to left,right,mouth (the face challenge Chromium's fake
# camera can answer: `python -m auth_flow demo-camera`); `make run FACE_CHALLENGE_DEMO_ORDER=` asks a random one.
DEMO ?= 1

run: $(STAMP) $(MODEL)
	$(PY) -m sunshine.launcher run $(if $(filter 1,$(DEMO)),--demo)

# The bank's story end to end (chat, authorization pages in Chromium, reports, approval, contract,
# money, schedule, an officer's approval), on the running stack or one it starts; DEMO_ARGS="--shots DIR".
demo: $(STAMP) $(MODEL)
	@scripts/ensure-chromium.sh
	$(PY) -m demo.story $(DEMO_ARGS)

chat: $(STAMP)
	@$(PY) -m emulators.wechat.chat

# pytest-xdist: the tests on a whole stack run in two groups, each in one process, in order, on a
# stack of its own (tests/conftest.py groups them), while the other processes run the rest. Three
# processes on two cores: the stack groups spend much of their time waiting for answers, and the
# third keeps both cores busy meanwhile. TEST_PROCESSES=0 runs everything in one.
TEST_PROCESSES ?= 3
PYTEST := $(PY) -m pytest -n $(TEST_PROCESSES) --dist loadgroup --durations=15

test: $(STAMP) $(MODEL)
	@scripts/ensure-chromium.sh
	$(PYTEST)

# Everything that needs no whole stack (no Rasa, no trained model, no browser).
FAST_TESTS := tests/unit tests/web tests/security tests/nlu

test-fast: $(STAMP)
	$(PYTEST) $(FAST_TESTS)

# The fast tier on a clock years ahead (SUNSHINE_CLOCK moves sunshine.clock, and the demo lines
# move with it), always on SQLite: CI runs `make test` on PostgreSQL where one answers, and this
# keeps SQLite covered.
CLOCK_MOVED_TO ?= 2031-06-01

test-clock: $(STAMP)
	env -u DATABASE_URL SUNSHINE_CLOCK=$(CLOCK_MOVED_TO) $(PYTEST) $(FAST_TESTS)

# `make test` on PostgreSQL (what CI runs where a server answers).
test-postgres: $(STAMP) $(MODEL)
	@scripts/ensure-chromium.sh
	DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} $(PYTEST)

# Each benchmark starts what it needs (a private Redis when REDIS_URL is empty); figures are merged
# into var/bench/results.json. Every benchmark runs even when one fails; the failed ones are named
# at the end and make the target fail.
BENCHMARKS := bench.nlu bench.webhook bench.lending bench.assistant bench.auth bench.handoff bench.binding bench.evidence \
	bench.notices bench.mp_api bench.disbursement bench.customers bench.workbench bench.inspection bench.nodes demo.story

bench: $(STAMP) $(MODEL)
	@failed=""; for b in $(BENCHMARKS); do echo "== $$b"; $(PY) -m $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "== failed:$$failed"; exit 1; fi; echo "== every benchmark ran"

# The whole stack under a crowd of simulated WeChat users for 10 minutes (SOAK_ARGS="--minutes 2" for less);
# fails when an answer is lost or duplicated.
soak: $(STAMP) $(MODEL)
	$(PY) -m bench.soak $(SOAK_ARGS)

# Every static check, as pyproject.toml sets them (also run by pre-commit, see .pre-commit-config.yaml):
# ruff's rules, ruff's formatting, mypy on the service packages, and the import layers (import-linter).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

nlu-report: $(STAMP) $(MODEL)
	$(PY) -m bench.nlu_report

clean:
	rm -rf var/models var/run .rasa

# pip-audit lives in its own environment (it needs a newer `packaging` than Rasa allows). It audits
# what `make setup` installed from requirements*.txt (the resolved set, dependencies included)
# against PyPI's vulnerability data; audit-ignore.txt lists what is accepted, with the reason.
AUDIT_VENV := var/audit-venv

$(AUDIT_VENV)/.installed: requirements-audit.txt scripts/find-python310.sh
	@PY310="$$(scripts/find-python310.sh)" || exit 1; rm -rf $(AUDIT_VENV) && "$$PY310" -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	@touch $@

audit: $(STAMP) $(AUDIT_VENV)/.installed
	@# tests: every rule but those pyproject.toml excuses them (asserts, fixture secrets, our own scripts, local emulators)
	$(VENV)/bin/ruff check --select S .
	@mkdir -p var/audit; rm -f var/audit/pip-audit.json
	-$(AUDIT_VENV)/bin/pip-audit --vulnerability-service pypi --progress-spinner off \
		--path $(VENV)/lib/python3.10/site-packages --format json --output var/audit/pip-audit.json
	$(PY) scripts/audit_report.py var/audit/pip-audit.json audit-ignore.txt
