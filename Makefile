# sbi-course: every target creates .venv on first use (CPU-only torch via constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
# nbgrader calls `alembic`, so the venv's bin/ must be on PATH for every command.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MPLBACKEND := Agg

.PHONY: help venv lab test test-fast test-browser lint format exercises bench bench-hh bench-scale \
	grade grade-demo clean exams exam-pdf final-grade

help:
	@echo "make lab         start JupyterLab on the course (creates .venv on first use)"
	@echo "make test        run the whole test suite"
	@echo "make test-fast   the tests without notebooks and network training"
	@echo "make test-browser  JupyterLab end-to-end tests in Chromium (apt-get install chromium)"
	@echo "make lint        ruff check and format check"
	@echo "make exercises   regenerate exercises/ from solutions/ with nbgrader"
	@echo "make grade ASSIGNMENT=02_abc WORKERS=2   autograde submitted/ in a sandbox, in parallel"
	@echo "make grade-demo  autograde synthetic submissions and print a grade table"
	@echo "make exams       rebuild the exams (exams/source, exams/exercises) from the question bank"
	@echo "make exam-pdf EXAM=exam_week1 IDS='--student alice --variant 1'"
	@echo "                 question sheets and answer keys as PDF in build/exam-pdf/"
	@echo "make final-grade gradebook.db -> grades.csv (mean of the three exams, homework beside)"
	@echo "make bench       run the benchmarks (see benchmarks/README.md)"
	@echo "make bench-scale simulations per second: loop, batched, 1 and 2 workers (SCALE_ARGS=...)"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[course,dev]"
	touch $(STAMP)

lab: $(STAMP)
	@echo "Starting JupyterLab; open the http://127.0.0.1:$(PORT)/lab?token=... URL printed below."
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) --allow-root \
		--ServerApp.root_dir=$(CURDIR)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

exercises: $(STAMP)
	$(BIN)/python -m tools.grading generate

WORKERS ?= 2
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=02_abc [WORKERS=2]"; exit 2; }
	$(BIN)/python -m tools.grading autograde $(ASSIGNMENT) --workers $(WORKERS)

grade-demo: $(STAMP)
	$(BIN)/python -m tools.grading demo

EXAM ?= exam_week1
IDS ?= --variant 1

exams: $(STAMP)
	$(BIN)/python -m tools.exams build

exam-pdf: $(STAMP)
	$(BIN)/python -m tools.exams pdf $(EXAM) $(IDS)

final-grade: $(STAMP)
	$(BIN)/python -m tools.exams final-grade grades.csv

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-hh: $(STAMP)
	$(BIN)/python benchmarks/hodgkin_huxley_speed.py

bench-scale: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/scaling.py $(SCALE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache submitted autograded feedback release gradebook.db
