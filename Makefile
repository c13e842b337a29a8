# Rollcall: two commands matter.
#   make demo   set everything up, then deploy the SMS on this machine's Docker engine
#   make test   set everything up, then run every test (lint, sanity, unit, integration, molecule)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
PY         := $(VENV)/bin/python
BIN        := $(VENV)/bin
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Molecule scenarios that run in `make test` (empty: all of them, in parallel; they are independent).
SCENARIOS  ?=

.PHONY: help setup python engine images collection tools demo demo-clean test test-fast lint sanity unit integration \
        molecule bench clean

help:
	@echo "make demo       set up and deploy the SMS demo (http://127.0.0.1:8080)"
	@echo "make test       set up and run all tests"
	@echo "make test-fast  lint + unit tests only (inner loop)"
	@echo "make setup      install and start everything the project needs (idempotent)"
	@echo "make images     build the images (content-hash cached)"
	@echo "make bench      run the benchmarks under bench/"
	@echo "make demo-clean remove the demo stack and its data"

## ---------------------------------------------------------------- setup
setup: python engine images collection tools
	@echo "setup: done"

# The virtualenv is rebuilt only when requirements.txt or its base Python changes. The base: Debian's own
# /usr/bin/python3 when it can make a venv (built with profile-guided optimisation, it runs Ansible's controller and
# every local module run about a quarter faster than a pyenv build: docs/performance.md), else the python3 on PATH.
BASE_PY := $(shell for p in /usr/bin/python3 python3; do \
  $$p -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null && { command -v $$p; break; }; done)
python: $(VENV)/.requirements.stamp
	@want=$$(readlink -f "$(BASE_PY)"); have=$$($(PY) -c 'import sys; print(sys._base_executable)' 2>/dev/null || true); \
	if [ -n "$$have" ] && [ "$$(readlink -f "$$have")" != "$$want" ]; then \
	  echo "setup: $(VENV) was made from $$have, not $(BASE_PY): making it again"; rm -rf $(VENV); $(MAKE) --no-print-directory python; fi
$(VENV)/.requirements.stamp: requirements.txt
	@test -n "$(BASE_PY)" || { echo "setup: no Python 3.11 or newer with venv found (apt-get install python3-venv)" >&2; exit 1; }
	@test -x $(PY) || { echo "setup: creating $(VENV) from $(BASE_PY)"; $(BASE_PY) -m venv $(VENV); }
	@echo "setup: installing pinned Python requirements"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2> >(grep -v '^WARNING: Location' >&2)
	@touch $@

engine:
	@images/engine.sh

# promtool and amtool (Debian's packages, unpacked into .cache/tools) for the monitoring configuration's tests.
tools:
	@tests/tools.sh

images: python engine
	@$(PY) images/build.py

# Make the repository importable as the collection rollcall.ops (ansible.cfg points collections_path here).
# A copy of rollcall.ops installed in ~/.ansible/collections (e.g. by an old Molecule prerun) would shadow the
# repository for ansible-lint; it is removed.
STALE_COPY := $(HOME)/.ansible/collections/ansible_collections/rollcall/ops
collection: .collections/ansible_collections/rollcall/ops
	@if [ -d "$(STALE_COPY)" ] && [ ! -L "$(STALE_COPY)" ]; then rm -rf "$(STALE_COPY)"; \
	  echo "setup: removed a stale copy of rollcall.ops from $(STALE_COPY)"; fi
.collections/ansible_collections/rollcall/ops:
	@mkdir -p .collections/ansible_collections/rollcall
	@ln -sfn ../../.. $@
	@echo "setup: linked the repo as collection rollcall.ops"

## ---------------------------------------------------------------- main job
demo: setup
	ansible-playbook -i inventories/local playbooks/deploy.yml

# A new demo starts as new: stack, data volumes, release history and audit log (teardown), reports, incident
# bundles, generated secrets and backups. KEEP_BACKUPS=1 keeps .backups/ and the key that decrypts them.
demo-clean: setup
	ansible-playbook -i inventories/local playbooks/teardown.yml -e teardown_volumes=true -e confirm=yes
	rm -rf reports incidents
	@# the demo's own secrets (and its DR drill's); another stack's (.secrets/local/<project>/) stay with that stack
	@rm -rf .secrets/local/secret_key .secrets/local/db_password .secrets/local/db_root_password .secrets/local/rollcall-drill
	@if [ -n "$(KEEP_BACKUPS)" ]; then \
	  echo "demo-clean: kept .backups/ and the keys that read them, .secrets/local/backup_key, backup_old_keys/ and pitr_cipher_pass (KEEP_BACKUPS=1)"; \
	else rm -rf .backups .secrets/local/backup_key .secrets/local/backup_old_keys .secrets/local/pitr_cipher_pass; fi
	@others=$$(find .secrets/local -mindepth 1 -maxdepth 1 -type d ! -name backup_old_keys 2>/dev/null | sort | tr '\n' ' '); \
	if [ -n "$$others" ]; then echo "demo-clean: kept the secrets of other stacks, $$others(they go with those stacks)"; \
	else rmdir .secrets/local 2>/dev/null || true; fi

## ---------------------------------------------------------------- tests
# Integration, then Molecule: side by side (tried 2026-12-05) they took longer than one after the other; under a
# load average of 11-20 every test under load ran longer, and its load generator with it (docs/performance.md).
# Lint (ruff, ansible-lint) and sanity (ansible-test) use one core each: side by side they take the time of the longer
# (83 s and 56 s one after the other on 2026-12-05). The rest needs both cores.
test: setup
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint sanity
	@$(MAKE) --no-print-directory unit integration molecule
	@echo "test: all suites passed"

test-fast: python collection tools lint unit

lint: python collection
	ruff check .
	ansible-lint --profile production --offline

sanity: python
	tests/sanity.sh

unit: python collection tools
	pytest -rs -n 2 tests/unit

integration: setup
	@# --no-loadscope-reorder: xdist would order the files by how many tests they hold, not by conftest's HEAVIEST;
	@# test_release.py (one 516 s test, now part of test_release_sequence.py) then started last and ran alone for 9 minutes.
	@# Three workers on two cores: the tests wait on containers, gates and disks often enough that a third file fills
	@# the gaps (2026-12-05: 16.5 min instead of 24.3 with two, each file's own seconds about the same; docs/performance.md).
	pytest -rs -n 3 --dist loadfile --no-loadscope-reorder --durations=30 tests/integration

molecule: setup
	tests/molecule.sh $(SCENARIOS)

bench: setup
	bench/run.sh

clean:
	rm -rf .collections .cache
