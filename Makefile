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
