# neurocc: two commands do everything on a fresh machine (Python 3.11 + pip):
#   make demo   set up .venv if needed, then run `neurocc quickstart`
#   make test   set up .venv if needed, then run the test suite
# The set-up (scripts/setup.sh) is skipped when requirements and pyproject are unchanged.

VENV ?= .venv
PYTEST_ARGS ?=
JOBS ?= 2
export OPENBLAS_NUM_THREADS = 1
export NEUROCC_VENV = $(VENV)

.PHONY: setup demo test test-long fuzz clean help

help:
	@echo "make demo   set up (if needed) and run neurocc quickstart"
	@echo "make test   set up (if needed) and run the tests (PYTEST_ARGS='-k name' to pick)"
	@echo "make test-long  the long suites (marker 'long'), not in the default run"
	@echo "make fuzz   the long fuzz profile (400 random cases per input category) and the kill matrix"
	@echo "make setup  only set up $(VENV)"
	@echo "make clean  remove $(VENV) and caches"

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/bin/neurocc quickstart

test: setup
	$(VENV)/bin/python -m pytest -n $(JOBS) $(PYTEST_ARGS)

test-long: setup
	$(VENV)/bin/python -m pytest -n $(JOBS) -m long $(PYTEST_ARGS)

fuzz: setup
	NEUROCC_FUZZ_PROFILE=long $(VENV)/bin/python -m pytest -n $(JOBS) tests/test_fuzz.py tests/test_security.py \
		tests/test_kill.py -m "long or not long" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
