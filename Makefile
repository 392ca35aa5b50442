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

# Keep Jupyter, IPython and matplotlib caches out of ~ (notebook kernels draw inline).
export JUPYTER_RUNTIME_DIR := $(CURDIR)/build/jupyter/runtime
export IPYTHONDIR := $(CURDIR)/build/jupyter/ipython
export MPLCONFIGDIR := $(CURDIR)/build/jupyter/matplotlib
export PYTHONHASHSEED := 0

SUBMISSIONS ?= submitted
LESSONS := $(sort $(notdir $(wildcard solutions/[0-9]*)))

.PHONY: help course test lab release grade bench clean

help:
	@echo "make course   run every lesson headless, print a table of run times and results"
	@echo "make test     every test: package, release in sync, grading, notebooks"
	@echo "make lab      JupyterLab on lessons/"
	@echo "make release  regenerate lessons/ from solutions/ with nbgrader"
	@echo "make grade    autograde SUBMISSIONS=folder (folder/<student>/<lesson>/<lesson>.ipynb)"
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
	$(PY) tools/run_lessons.py $(LESSONS)

test: $(STAMP)
	$(PY) -m pytest tests

lab: $(STAMP)
	$(VENV)/bin/jupyter lab lessons

release: $(STAMP)
	$(PY) tools/release.py $(LESSONS)

grade: $(STAMP)
	$(PY) tools/grade.py $(SUBMISSIONS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf build
