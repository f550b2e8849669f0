# The two commands a new user types. Each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz venv clean

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

# The randomised tests with fresh examples, round after round for FUZZ_MINUTES (CI runs them
# derandomised in `make test`). A failure stops the loop; hypothesis prints the example and keeps
# it in .hypothesis/ so the next round replays it first. Turn each find into a regression test.
FUZZ_MINUTES ?= 10
fuzz: venv
	@end=$$(( $$(date +%s) + 60 * $(FUZZ_MINUTES) )); round=0; \
	while [ $$(date +%s) -lt $$end ]; do \
		round=$$((round + 1)); echo "fuzz round $$round"; \
		HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz -p no:cacheprovider || exit 1; \
	done; echo "fuzz: $$round rounds, $(FUZZ_MINUTES) min, nothing found"

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
