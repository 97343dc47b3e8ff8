# etio — the two commands of the README are `make reproduce` and `make test`.
# Both do every set-up step they need (R and Fashion-MNIST from Debian, the Python venv, bnlearn
# when CRAN is reachable) and are idempotent: a second run reuses what the first installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.etio-installed
CONFIG ?= experiments/digits.toml
OUT    ?= artifacts/digits
# pytest-xdist workers of `make test`: one per core this process may use (nproc, without the OpenMP
# limits it would otherwise report), at most 4 (each holds a torch process of up to 2 GB; the long
# files decide the time beyond that).
TEST_WORKERS ?= $(shell n=$$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))

.PHONY: setup r-setup data-setup test qa reproduce reproduce-paper bench vocabulary layout differences mutation clean-venv

setup: r-setup data-setup $(STAMP)

r-setup:
	@bash scripts/setup-r.sh

# Fashion-MNIST (Debian's dataset-fashion-mnist) for the real-data study and its tests.
data-setup:
	@bash scripts/setup-data.sh

# rpy2 compiles against the installed R, so R comes first. requirements.lock also pins the
# extras etio[ray] and etio[slurm] (ray, submitit), so the executor tests run them for real.
$(STAMP): pyproject.toml requirements.lock | r-setup
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

# Each file runs whole on one worker (its module fixtures are built once), the files with long tests
# first (tests/conftest.py orders them; xdist would otherwise reorder them by their number of tests).
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

# The bad-input and fault matrix alone (part of `make test` too); ends with "qa matrix: N held, M failed".
qa: setup
	$(BIN)/python -m pytest -q tests/commands/test_qa_matrix.py

reproduce: setup
	$(BIN)/etio reproduce --config $(CONFIG) --out $(OUT)

reproduce-paper: setup
	$(BIN)/etio reproduce --paper --out artifacts/paper

bench: setup
	$(BIN)/etio bench learn
	$(BIN)/etio bench train
	$(BIN)/etio bench ate
	$(BIN)/etio bench robust-train

# r/vocabulary.csv is generated from etio/core/vocabulary.py (tests/core/test_vocabulary.py fails while stale).
vocabulary: setup
	$(BIN)/python -m etio.core.vocabulary

# r/layout.csv is generated from etio/core/layout.py, the run layout (tests/core/test_layout.py fails while stale).
layout: setup
	$(BIN)/python -m etio.core.layout

# docs/differences.md quotes the report's differences section, generated from its one source,
# etio/report/templates/differences.md.j2 (tests/report/test_report.py fails while stale).
differences: setup
	$(BIN)/python -m etio.report.document

# Not part of `make test`: the planted bugs and mutmut's mutants of the scientific core, with the
# killed share per module (scripts/mutation.py; equivalent survivors in docs/mutation.md).
mutation: setup
	$(BIN)/python scripts/mutation.py

clean-venv:
	rm -rf $(VENV)
