# The two commands in README.md: `make demo` and `make test`. Everything else is a piece of those.
SHELL := /bin/bash
VENV := .venv/bin
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export ANSIBLE_CONFIG := $(CURDIR)/tests/ansible.cfg
export PATH := $(CURDIR)/.venv/bin:$(PATH)
PYTEST := $(VENV)/python -m pytest

.PHONY: demo test bootstrap-core bootstrap-test lint sanity unit integration molecule bench build clean

demo: bootstrap-core
	$(VENV)/python scripts/demo.py

test: bootstrap-test lint sanity unit integration molecule
	@echo "make test: all suites passed"

bootstrap-core:
	scripts/bootstrap.sh core

bootstrap-test:
	scripts/bootstrap.sh test

lint:
	$(VENV)/ruff check plugins bin scripts tests
	# ansible-test's pep8 (pycodestyle) rules, in seconds: blank lines and indents ruff only checks in preview
	$(VENV)/ruff check --preview --select E1,E2,E3,E7,W --line-length 160 plugins bin scripts tests
	$(VENV)/yamllint -s .
	$(VENV)/ansible-lint --offline -q

sanity:
	scripts/sanity.sh

unit:
	$(PYTEST) -q tests/unit

integration:
	$(PYTEST) -q -n 2 --dist loadfile tests/integration

molecule: bootstrap-test
	scripts/molecule.sh

bench: bootstrap-test
	$(VENV)/python scripts/bench.py

build:
	$(VENV)/ansible-galaxy collection build --force --output-path .build

clean:
	rm -rf .build .pytest_cache tests/output
