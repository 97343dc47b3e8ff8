# etio — the two commands of the README are `make reproduce` and `make test`.
# Both do every set-up step they need (R from Debian, the Python venv, bnlearn when CRAN is
# reachable) and are idempotent: a second run reuses what the first installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.etio-installed
CONFIG ?= experiments/digits.toml
OUT    ?= artifacts/digits

.PHONY: setup r-setup test reproduce reproduce-paper bench vocabulary clean-venv

setup: r-setup $(STAMP)

r-setup:
	@bash scripts/setup-r.sh

# rpy2 compiles against the installed R, so R comes first.
$(STAMP): pyproject.toml requirements.lock | r-setup
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

test: setup
	$(BIN)/python -m pytest -q tests

reproduce: setup
	$(BIN)/etio reproduce --config $(CONFIG) --out $(OUT)

reproduce-paper: setup
	$(BIN)/etio reproduce --paper --out artifacts/paper

bench: setup
	$(BIN)/etio bench learn
	$(BIN)/etio bench train
	$(BIN)/etio bench ate

# r/vocabulary.csv is generated from etio/core/vocabulary.py (tests/test_vocabulary.py fails while stale).
vocabulary: setup
	$(BIN)/python -m etio.core.vocabulary

clean-venv:
	rm -rf $(VENV)
