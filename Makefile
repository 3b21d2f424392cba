# tvae-book: execute every chapter of the book with papermill, then build the HTML.
#
#   make book     the paper's settings (PROFILE=paper; hours on a CPU)  -> _build/paper/html
#   make quick    a reader's CPU run (PROFILE=quick)                      -> _build/quick/html
#   make smoke    seconds per chapter, for tests (PROFILE=smoke)          -> _build/smoke/html
#   make read     the paper book from record/paper, executing nothing   -> _build/read/paper/html
#   make record   copy a finished build (make book) into record/<profile>/, to be committed
#   make models   only train the profile's models into the cache (PROFILE=paper by default)
#   make test     ruff + smoke book (warnings are errors) + pytest tests/ (incl. browser test)
#   make clean    remove _build/ and the smoke/quick results (keeps cache/ and results/paper*/)
#
# Independent chapters run in parallel under `make -j` (e.g. `make -j2 quick`). Optional
# chapter overrides: SEED=1 SEEDS=1 EPOCHS=3 DEVICE=cpu DATA_DIR=/path (papermill parameters;
# SEEDS=1 builds the one-seed book, its CSVs in results/<profile>-seeds1/).
# ENGINE=ray trains the models as Ray tasks, on $RAY_ADDRESS's cluster or a local Ray (README).
#
# How a build works, for PROFILE=p:
#   1. .venv is created from requirements.txt if missing (and refreshed when it changes).
#   2. scripts/train_models.py trains every model the chapters use into the model cache: one
#      worker per make job, or per core under a serial make (cached entries take seconds).
#   3. Every book/[0-9][0-9]_*.ipynb is executed by scripts/run_chapter.py (papermill, kernel
#      `python3` of .venv, cwd = repository root, -p profile p) into
#      _build/p/stage/book/, a mirror of the repository's book layout.
#   4. scripts/stage_book.py mirrors _config.yml, _toc.yml and the non-notebook files of book/
#      into the stage, plus the JavaScript the book serves itself (ipywidgets' html-manager
#      and MathJax, fetched with `npm pack` by scripts/fetch_*.sh; CDN if that fails).
#   5. `jupyter-book build -W -n --keep-going` builds the stage (execution is off in
#      _config.yml) and the HTML is copied to _build/p/html (open _build/p/html/index.html).
#   6. scripts/record.py finish names the run (a hash of results/p/*.csv and the executed
#      pages) and writes it, with the commit, machine, seeds and wall time (counted from
#      _build/p/build-start), into results/p/RUN.json. `make record` then copies the build into
#      record/p/ and `make read` builds the book from such a record (RECORD=record/p).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := book
.DELETE_ON_ERROR:

PROFILE ?= paper
ENGINE ?= local

# ---------------------------------------------------------------- environment ----
VENV ?= .venv
PY := $(VENV)/bin/python
VENV_OK := $(VENV)/.requirements-installed

# Absolute paths, so that the kernels' working directory never matters. TVAE_DATA defaults to
# ../shared/data when it exists (the CI layout), else ./data (the package's default).
export TVAE_CACHE ?= $(CURDIR)/cache
export TVAE_DATA ?= $(firstword $(wildcard $(abspath ../shared/data)) $(CURDIR)/data)
# Headless: no display for matplotlib, no interactive prompts.
export MPLBACKEND := Agg
# TVAE_THREADS: exported per chapter by scripts/run_chapter.py as (cores / -j level) under
# parallel make (it reads the -j level from MAKEFLAGS); left unset for a serial make.

# ---------------------------------------------------------------------- paths ----
BUILD := _build/$(PROFILE)
STAGE := $(BUILD)/stage
HTML := $(BUILD)/html
WIDGETS_JS := _build/widgets_js
MATHJAX := _build/mathjax

# Chapters are found by pattern, so new ones join the build without editing this file.
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))
EXECUTED := $(CHAPTERS:book/%=$(STAGE)/book/%)
TVAE_SRC := $(wildcard tvae/*.py tvae/*/*.py tvae/static/*)

# Chapter parameters besides `profile` (only those given on the command line).
PARAMS := $(if $(SEED),-p seed $(SEED)) $(if $(SEEDS),-p seeds $(SEEDS)) $(if $(EPOCHS),-p epochs $(EPOCHS)) \
          $(if $(DEVICE),-p device $(DEVICE)) $(if $(DATA_DIR),-p data_dir $(DATA_DIR))

.PHONY: book quick smoke html models stage book-js test lint clean help venv record read FORCE

# ------------------------------------------------------------- system tools ----
# Checked while make reads this file, before any work: a missing tool is installed with apt
# when make runs as root, else make stops with one line naming the command to run
# (scripts/require_tools.sh). `make test` needs Chromium and npm; every goal but clean and
# help needs python3's venv module until .venv exists.
REQUIRED_TOOLS := $(if $(filter test,$(MAKECMDGOALS)),chromium npm) \
                  $(if $(filter-out clean help,$(or $(MAKECMDGOALS),book)),venv)
ifneq ($(strip $(REQUIRED_TOOLS)),)
MISSING_TOOLS := $(shell TVAE_VENV="$(VENV)" scripts/require_tools.sh "$(or $(MAKECMDGOALS),book)" $(REQUIRED_TOOLS))
$(if $(MISSING_TOOLS),$(error $(MISSING_TOOLS)))
endif

# ---------------------------------------------------------------- top targets ----
book:
	$(MAKE) PROFILE=paper html
quick:
	$(MAKE) PROFILE=quick html
smoke:
	$(MAKE) PROFILE=smoke html

help:
	@sed -n '2,11p' Makefile

# `make test`: each step must pass; pytest's exit status is kept as is, so "no tests
# collected" (5) fails the target like any other failure.
test: | $(VENV_OK)
	$(MAKE) lint
	$(MAKE) PROFILE=smoke html
	TVAE_BOOK_HTML=$(CURDIR)/_build/smoke/html $(PY) -m pytest tests/

lint: | $(VENV_OK)
	$(VENV)/bin/ruff check .

# ------------------------------------------------------------------- the venv ----
venv: $(VENV_OK)
$(VENV_OK): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	# The `python3` kernelspec inside the venv, so papermill runs the venv's ipykernel.
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tvae)"
	touch $@

# --------------------------------------------------------- chapter execution ----
# Re-executed when the notebook, the tvae package, the runner or the parameters change.
$(BUILD)/params: FORCE
	@mkdir -p $(@D)
	@echo '$(PARAMS)' | cmp -s - $@ || echo '$(PARAMS)' > $@

# The profile's models, trained up front by as many workers as make has jobs, else cores (an
# order-only prerequisite of every chapter: it always runs, never forces a chapter to re-run).
models: | $(VENV_OK)
	$(PY) scripts/train_models.py --profile $(PROFILE) --engine $(ENGINE) $(PARAMS)

$(STAGE)/book/%.ipynb: book/%.ipynb $(TVAE_SRC) scripts/run_chapter.py $(BUILD)/params | $(VENV_OK) models
	$(PY) scripts/run_chapter.py $< $@ --profile $(PROFILE) $(PARAMS) \
	    --work-dir $(BUILD)/runs $(CHAPTER_ARGS)

# The explorer chapter writes its weights and JavaScript beside its executed notebook.
$(STAGE)/book/13_explorer.ipynb: CHAPTER_ARGS = --static-dir $(STAGE)/book/explorer_static

# The discussion reads the CSVs written by chapters 04 (training), 05, 06 (denoising),
# 07 (generation verdicts), 08 and 10.
$(filter %/14_discussion.ipynb,$(EXECUTED)): \
    $(filter $(STAGE)/book/04_% $(STAGE)/book/05_% $(STAGE)/book/06_% $(STAGE)/book/07_% \
             $(STAGE)/book/08_% $(STAGE)/book/10_%,$(EXECUTED))

# When this build started (seconds since the epoch), for the wall time in results/p/RUN.json.
# Written before the models are trained and before the stage (order-only: it never makes a
# chapter re-run).
$(BUILD)/build-start: FORCE
	@mkdir -p $(@D)
	@date +%s.%N > $@
models stage: | $(BUILD)/build-start

# ------------------------------------------------------------ staging & build ----
# JavaScript the book serves itself, fetched once with npm into _build/ (not committed:
# embed-amd.js alone is 3.6 MB, MathJax 3 MB). A failed fetch is not fatal: stage_book.py then
# leaves the CDN defaults in the staged config.
book-js:
	scripts/fetch_widget_js.sh $(WIDGETS_JS) || echo "widget JS fetch failed; using the CDN"
	scripts/fetch_mathjax.sh $(MATHJAX) || echo "MathJax fetch failed; using the CDN"

stage: book-js | $(VENV_OK)
	$(PY) scripts/stage_book.py $(STAGE) --widgets-js $(WIDGETS_JS) --mathjax $(MATHJAX)

# Always rebuilt (Sphinx itself is incremental); needs every chapter executed first.
html: $(EXECUTED) stage | $(VENV_OK)
	$(VENV)/bin/jupyter-book build -W -n --keep-going $(STAGE)
	rm -rf $(HTML)
	cp -a $(STAGE)/_build/html $(HTML)
	$(PY) scripts/record.py finish --profile $(PROFILE) $(PARAMS) --build $(BUILD)
	@echo "Book ($(PROFILE)): $(CURDIR)/$(HTML)/index.html"

# ------------------------------------------------------------ the record ----
# `make record` (after `make book`): the finished build's pages, explorer files and served
# JavaScript, with RECORD.json, into record/<profile>/ (at most 25 MB; scripts/record.py).
record: | $(VENV_OK)
	$(PY) scripts/record.py make --profile $(PROFILE) $(PARAMS) --build $(BUILD)

# `make read`: the book's HTML from a record (RECORD=record/paper by default), executing and
# training nothing, offline: stage the record's pages with the current text, config and toc,
# then build with execution off, warnings as errors.
RECORD ?= record/paper
READ_DIR ?= _build/read/$(notdir $(RECORD))
read: | $(VENV_OK)
	$(PY) scripts/record.py stage $(RECORD) $(READ_DIR)/stage
	$(VENV)/bin/jupyter-book build -W -n --keep-going $(READ_DIR)/stage
	rm -rf $(READ_DIR)/html
	cp -a $(READ_DIR)/stage/_build/html $(READ_DIR)/html
	@echo "Book (record $(RECORD)): $(abspath $(READ_DIR))/html/index.html"

# ---------------------------------------------------------------------- clean ----
clean:
	rm -rf _build results/smoke results/smoke-* results/quick results/quick-*

FORCE:
