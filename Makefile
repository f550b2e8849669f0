# The two commands a new user types. Each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz venv clean corpus soundfonts

$(BIN)/diffmoog-installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: any other torch request would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The SoundFont renderer (create-data --from-soundfont). --no-deps: its metadata requires PyAudio,
	# which only live playback uses, has no Linux wheel and does not build without portaudio headers.
	$(BIN)/pip install -q --no-deps tinysoundfont==0.3.7
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

# The default real-instrument corpus (NSynth's layout, see README "Real instruments from SoundFonts"):
# both Debian GM fonts, every program with an NSynth family in every bank, the drum kits, every
# second key from 22 to 108 (each C is in), velocities 75 and 127. Installs the fonts if missing.
# A run that was stopped resumes; a finished corpus is left alone.
FONT_GM := /usr/share/sounds/sf2/FluidR3_GM.sf2
FONT_MUSESCORE := /usr/share/sounds/sf3/MuseScore_General_Lite.sf3
FONT_PACKAGES := fluid-soundfont-gm musescore-general-soundfont-small
CORPUS := corpora/gm
corpus: venv
	@$(BIN)/python -c "import tinysoundfont" 2>/dev/null || $(BIN)/pip install -q --no-deps tinysoundfont==0.3.7
	@test -f $(FONT_GM) -a -f $(FONT_MUSESCORE) || $(MAKE) --no-print-directory soundfonts
	@if [ -f $(CORPUS)/metadata.json ]; then echo "$(CORPUS) is already rendered (delete it to render it again)"; \
	else $(BIN)/create-data --from-soundfont $(FONT_GM) $(FONT_MUSESCORE) --pitches $$(seq 22 2 108) \
		--velocities 75 127 -o $(CORPUS); fi

soundfonts:
	@if ! command -v apt-get >/dev/null; then \
		echo "make corpus: no apt-get here; get FluidR3_GM.sf2 (or any GM SoundFont) and run create-data --from-soundfont FONT -o $(CORPUS)" >&2; exit 1; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(FONT_PACKAGES); \
	elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq $(FONT_PACKAGES); \
	else echo "make corpus: the SoundFonts are missing; as root run: apt-get install -y $(FONT_PACKAGES)" >&2; exit 1; fi
