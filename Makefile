# Every target builds .venv on first use; nothing else needs to be installed by hand.
# On Colab, or anywhere torch is already installed, `pip install -e .` is all you need.

PYTHON3 ?= python3
TORCH_VERSION ?= 2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bdl-installed
# A local folder of wheels (e.g. torch's CPU build) is used when the machine has one.
WHEELS ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS)/*.whl),--find-links $(WHEELS),)

# Keep Jupyter, JupyterLab, IPython and matplotlib settings and caches out of ~ (notebook
# kernels draw inline); the folders are made below, before any target runs.
JUPYTER := $(CURDIR)/build/jupyter
export JUPYTER_CONFIG_DIR := $(JUPYTER)/config
export JUPYTER_DATA_DIR := $(JUPYTER)/data
export JUPYTER_RUNTIME_DIR := $(JUPYTER)/runtime
export JUPYTERLAB_SETTINGS_DIR := $(JUPYTER)/lab/user-settings
export JUPYTERLAB_WORKSPACES_DIR := $(JUPYTER)/lab/workspaces
export IPYTHONDIR := $(JUPYTER)/ipython
export MPLCONFIGDIR := $(JUPYTER)/matplotlib
export PYTHONHASHSEED := 0
$(shell mkdir -p $(JUPYTER_CONFIG_DIR) $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR) $(MPLCONFIGDIR))

SUBMISSIONS ?= submitted
TIMEOUT ?= 300
# the one rule for what a lesson is: tools/nbcourse.py lessons() (standard library only)
LESSONS = $(shell $(PYTHON3) tools/nbcourse.py)
# JupyterLab refuses to start as root unless told; a laptop user is not root
LAB_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
# nbgrader's gradebook runs the `alembic` executable, which lives in .venv/bin
LAB_PATH := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: help course test test-browser lab instructor release grade feedback bench clean

help:
	@echo "make course   run every lesson headless, print a table of run times and results"
	@echo "              (TIMEOUT=seconds per cell, default 300)"
	@echo "make test     every test: package, release in sync, grading, notebooks, Colab, browser"
	@echo "make test-browser  only the browser test (JupyterLab in headless Chromium)"
	@echo "make lab      JupyterLab on lessons/ (students)"
	@echo "make instructor  JupyterLab on solutions/ with nbgrader's toolbar and Formgrader,"
	@echo "              its gradebook and exchange in build/instructor/"
	@echo "make release  regenerate lessons/ from solutions/ with nbgrader"
	@echo "make grade    autograde SUBMISSIONS=folder (folder/<student>/<lesson>/<lesson>.ipynb)"
	@echo "              (GRADE_ARGS=\"--workers 4 --cell-timeout 300\": tools/grade.py --help)"
	@echo "make feedback rewrite the feedback from the gradebook, after marking in Formgrader"
	@echo "make bench    benchmarks, printed as a table"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --disable-pip-version-check $(FIND_LINKS) "torch==$(TORCH_VERSION)" \
	    || $(PY) -m pip install --disable-pip-version-check $(FIND_LINKS) torch
	$(PY) -m pip install --disable-pip-version-check $(FIND_LINKS) -e ".[bayes,course,dev]"
	# Optional jsonschema extra; importing it costs ~3 s in every Jupyter/nbgrader process.
	-$(PY) -m pip uninstall -y -q rfc3987-syntax
	touch $(STAMP)

course: $(STAMP)
	$(PY) tools/run_lessons.py --timeout $(TIMEOUT) $(LESSONS)

test: $(STAMP)
	$(PY) -m pytest tests

test-browser: $(STAMP)
	$(PY) -m pytest tests/test_browser.py

lab: $(STAMP)
	$(LAB_PATH) $(VENV)/bin/jupyter lab $(LAB_ARGS) lessons

# nbgrader keeps its gradebook and exchange in the course root: here a scratch course whose
# source is a link to solutions/ (edits land in the repository) and whose release folder is
# scratch (`make release` makes the real one, with the tags Run All needs).
INSTRUCTOR := $(CURDIR)/build/instructor
instructor: $(STAMP)
	mkdir -p $(INSTRUCTOR)/exchange
	ln -sfn $(CURDIR)/solutions $(INSTRUCTOR)/solutions
	cp nbgrader_config.py $(INSTRUCTOR)/nbgrader_config.py
	printf '\n# make instructor: a scratch exchange beside the scratch gradebook\nc.Exchange.root = "%s"\n' \
	    "$(INSTRUCTOR)/exchange" >> $(INSTRUCTOR)/nbgrader_config.py
	cd $(INSTRUCTOR) && $(LAB_PATH) $(CURDIR)/$(VENV)/bin/jupyter lab $(LAB_ARGS)

release: $(STAMP)
	$(PY) tools/release.py $(LESSONS)

grade: $(STAMP)
	$(PY) tools/grade.py $(SUBMISSIONS) $(GRADE_ARGS)

feedback: $(STAMP)
	$(PY) tools/grade.py --feedback-only $(GRADE_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf build
