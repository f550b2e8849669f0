# The two commands a new user types. Each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test venv clean

$(BIN)/diffmoog-installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: any other torch request would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/diffmoog-installed

demo: venv
	$(BIN)/python -m diffmoog.demo

test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) experiments/demo

# Opt-in: NSynth prepared by tensorflow-datasets. TensorFlow goes into its own venv (.venv-tfds),
# so the default `make test` environment never has it.
TFDS_VENV := .venv-tfds
.PHONY: test-tfds
test-tfds:
	test -x $(TFDS_VENV)/bin/python || $(PYTHON) -m venv $(TFDS_VENV)
	$(TFDS_VENV)/bin/pip install -q torch==2.13.0
	$(TFDS_VENV)/bin/pip install -q -e '.[dev,tfds]'
	TF_CPP_MIN_LOG_LEVEL=3 $(TFDS_VENV)/bin/python -m pytest -q -rs tests/test_nsynth_tfds.py
