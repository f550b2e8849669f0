"""Bad chain specs: each mistake is one SpecError line naming the file, node and key.

Also a hypothesis fuzz test: mutated specs either load or raise SpecError, nothing else.
"""
import copy
import math

import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

import diffmoog
from diffmoog.errors import DiffmoogError, SpecError
from diffmoog.spec import builtin_chains, load_spec

BASE = {
    "name": "TEST",
    "nodes": {
        "osc": {"module": "oscillator", "fixed": {"waveform": "saw"}},
        "env": {"module": "adsr"},
        "vca": {"module": "vca", "inputs": ["osc"], "control": {"gain": "env"}},
        "lpf": {"module": "filter", "inputs": ["vca"], "fixed": {"filter_type": "lowpass"}},
    },
    "output": "lpf",
}


def _edit(change):
    raw = copy.deepcopy(BASE)
    change(raw)
    return raw


def _set(path, value):
    def change(raw):
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _delete(path):
    def change(raw):
        target = raw
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def _node(name, body):
    return _set(["nodes", name], body)


# (id, edit, expected message after "<file>: ")
CASES = [
    ("unknown module", _set(["nodes", "osc", "module"], "oscilator"),
     "node 'osc': key 'module': unknown module 'oscilator'; did you mean 'oscillator'?"),
    ("missing module", _delete(["nodes", "env", "module"]),
     "node 'env': key 'module': missing required field"),
    ("unknown fixed parameter", _set(["nodes", "osc", "fixed"], {"freq": 440}),
     "node 'osc': key 'fixed.freq': unknown parameter; did you mean 'freq_hz'?"),
    ("unknown free parameter", _set(["nodes", "lpf", "params"], {"cutof_hz": {"range": [100, 200]}}),
     "node 'lpf': key 'params.cutof_hz': unknown parameter; did you mean 'cutoff_hz'?"),
    ("fixed bad choice", _set(["nodes", "osc", "fixed", "waveform"], "sawtooth"),
     "node 'osc': key 'fixed.waveform': 'sawtooth' is not one of sine, saw, square, triangle; "
     "did you mean 'saw'?"),
    ("fixed not a number", _set(["nodes", "osc", "fixed"], {"freq_hz": "high"}),
     "node 'osc': key 'fixed.freq_hz': expected a number, got 'high'"),
    ("fixed and free", _set(["nodes", "osc", "params"], {"waveform": {}}),
     "node 'osc': key 'params.waveform': parameter is both fixed and free"),
    ("setting as free parameter", _set(["nodes", "osc", "params"], {"band_limit": {}}),
     "node 'osc': key 'params.band_limit': is a setting, not a learnable parameter; put it under 'fixed'"),
    ("cycle", lambda raw: raw["nodes"].update({
        "a": {"module": "filter", "inputs": ["b"]}, "b": {"module": "filter", "inputs": ["a"]}}),
     "node 'a': cycle: a -> b -> a"),
    ("self loop", _set(["nodes", "lpf", "inputs"], ["lpf"]),
     "node 'lpf': key 'inputs': a node cannot feed itself"),
    ("dangling input", _set(["nodes", "lpf", "inputs"], ["vcaa"]),
     "node 'lpf': key 'inputs': unknown node 'vcaa'; did you mean 'vca'?"),
    ("dangling control", _set(["nodes", "vca", "control"], {"gain": "envv"}),
     "node 'vca': key 'control.gain': unknown node 'envv'; did you mean 'env'?"),
    ("bad range order", _set(["nodes", "lpf", "params"], {"cutoff_hz": {"range": [5000, 100]}}),
     "node 'lpf': key 'params.cutoff_hz.range': low must be below high, got [5000, 100]"),
    ("range not a pair", _set(["nodes", "lpf", "params"], {"q": {"range": [1]}}),
     "node 'lpf': key 'params.q.range': must be [low, high], got [1]"),
    ("range not numbers", _set(["nodes", "lpf", "params"], {"q": {"range": ["a", 2]}}),
     "node 'lpf': key 'params.q.range': expected a number, got 'a'"),
    ("log range not positive", _set(["nodes", "lpf", "params"], {"cutoff_hz": {"range": [0, 1000]}}),
     "node 'lpf': key 'params.cutoff_hz.range': a log-scale range must be positive, got low=0"),
    ("log scale on a negative range", _set(["nodes", "osc", "params"], {"amp": {"range": [-1, 1], "scale": "log"}}),
     "node 'osc': key 'params.amp.range': a log-scale range must be positive, got low=-1"),
    ("bad scale", _set(["nodes", "osc", "params"], {"amp": {"scale": "categorical"}}),
     "node 'osc': key 'params.amp.scale': scale must be linear or log for a continuous parameter, "
     "got 'categorical'"),
    ("range on a categorical", _set(["nodes", "lpf", "params"], {"q": {}, "filter_type": {"range": [0, 1]}}),
     None),  # filter_type is fixed in BASE: reported as fixed-and-free; see next case
    ("default outside range", _set(["nodes", "lpf", "params"], {"q": {"range": [1, 2], "default": 3}}),
     "node 'lpf': key 'params.q.default': default 3 is outside [1, 2]"),
    ("unknown top-level field", lambda raw: raw.update({"nodez": {}}),
     "key 'nodez': unknown field; did you mean 'nodes'?"),
    ("unknown node field", lambda raw: raw["nodes"]["lpf"].update({"input": ["vca"]}),
     "node 'lpf': key 'input': unknown field; did you mean 'inputs'?"),
    ("unknown override field", _set(["nodes", "lpf", "params"], {"q": {"rang": [1, 2]}}),
     "node 'lpf': key 'params.q.rang': unknown field; did you mean 'range'?"),
    ("bad control port", _set(["nodes", "lpf", "control"], {"cutoff": "env"}),
     "node 'lpf': key 'control.cutoff': unknown control port for 'filter'; did you mean 'cutoff_hz'? "
     "(ports: cutoff_hz)"),
    ("control on a module without ports", _set(["nodes", "env", "control"], {"gain": "osc"}),
     "node 'env': key 'control.gain': unknown control port for 'adsr' (ports: none)"),
    ("missing required port", _node("fm", {"module": "fm_oscillator"}),
     "node 'fm': key 'control': module 'fm_oscillator' needs control port 'freq_hz' wired"),
    ("too many inputs", _set(["nodes", "vca", "inputs"], ["osc", "env"]),
     "node 'vca': key 'inputs': module 'vca' takes exactly 1 audio input(s), got 2"),
    ("missing input", _delete(["nodes", "lpf", "inputs"]),
     "node 'lpf': key 'inputs': module 'filter' takes exactly 1 audio input(s), got 0"),
    ("input to a source", _set(["nodes", "env", "inputs"], ["osc"]),
     "node 'env': key 'inputs': module 'adsr' takes exactly 0 audio input(s), got 1"),
    ("mixer without inputs", _node("mix", {"module": "mixer"}),
     "node 'mix': key 'inputs': module 'mixer' takes at least 1 audio input(s), got 0"),
    ("input listed twice", _node("mix", {"module": "mixer", "inputs": ["osc", "osc"]}),
     "node 'mix': key 'inputs': an input is listed twice"),
    ("inputs not a list", _set(["nodes", "lpf", "inputs"], {"a": 1}),
     "node 'lpf': key 'inputs': must be a list of node names"),
    ("active above 1", _set(["nodes", "lpf", "active"], 1.5),
     "node 'lpf': key 'active': must be a probability in (0, 1], got 1.5"),
    ("active not a number", _set(["nodes", "lpf", "active"], "yes"),
     "node 'lpf': key 'active': expected a number, got 'yes'"),
    ("unknown distribution", _set(["nodes", "lpf", "params"], {"q": {"distribution": {"type": "normall"}}}),
     "node 'lpf': key 'params.q.distribution.type': unknown distribution 'normall'; did you mean 'normal'?"),
    ("normal without std", _set(["nodes", "lpf", "params"], {"q": {"distribution": {"type": "normal", "mean": 1}}}),
     "node 'lpf': key 'params.q.distribution.std': a normal distribution needs mean and std (physical units)"),
    ("negative std", _set(["nodes", "lpf", "params"], {"q": {"distribution": {"type": "normal", "mean": 1, "std": -1}}}),
     "node 'lpf': key 'params.q.distribution.std': must be > 0, got -1"),
    ("categorical weights", _set(["nodes", "osc", "params"], {"waveform": {"distribution": {"weights": [1, 2]}}}),
     None),  # waveform is fixed in BASE; the free variant is tested below
    ("bad output", _set(["output"], "lpff"),
     "key 'output': unknown node 'lpff'; did you mean 'lpf'?"),
    ("missing output", _delete(["output"]),
     "key 'output': missing required field"),
    ("missing nodes", _delete(["nodes"]),
     "key 'nodes': missing required field"),
    ("empty nodes", _set(["nodes"], {}),
     "key 'nodes': must be a non-empty mapping of node name -> node"),
    ("bad node name", _node("my-osc", {"module": "oscillator"}),
     "node 'my-osc': node names must be identifiers (letters, digits, _)"),
    ("node not a mapping", _node("osc2", "oscillator"),
     "node 'osc2': a node must be a mapping with at least 'module'"),
    ("bad sample rate", _set(["sample_rate"], 800),
     "key 'sample_rate': must be an integer >= 1000, got 800"),
    ("negative duration", _set(["duration"], -1),
     "key 'duration': must be > 0, got -1"),
    ("negative note_off", _set(["note_off"], -0.5),
     "key 'note_off': must be >= 0, got -0.5"),
    ("infinite duration", _set(["duration"], math.inf),
     "key 'duration': expected a number, got inf"),
]
CASES = [c for c in CASES if c[2] is not None]
CASES += [
    ("weights of wrong length", lambda raw: raw["nodes"].update(
        {"osc2": {"module": "oscillator", "params": {"waveform": {"distribution": {"weights": [1, 2]}}}}}),
     "node 'osc2': key 'params.waveform.distribution.weights': needs 'weights': 4 non-negative numbers "
     "(sine, saw, square, triangle)"),
    ("range on a categorical", lambda raw: raw["nodes"].update(
        {"osc2": {"module": "oscillator", "params": {"waveform": {"range": [0, 1]}}}}),
     "node 'osc2': key 'params.waveform.range': a categorical parameter has choices, not a range"),
    # `pitch: note` marks a free frequency that follows the played note.
    ("pitch mode misspelt", _set(["nodes", "osc", "params"], {"freq_hz": {"pitch": "notes"}}),
     "node 'osc': key 'params.freq_hz.pitch': unknown pitch mode 'notes'; did you mean 'note'? (one of: note)"),
    ("pitch mode unknown", _set(["nodes", "osc", "params"], {"freq_hz": {"pitch": "midi"}}),
     "node 'osc': key 'params.freq_hz.pitch': unknown pitch mode 'midi' (one of: note)"),
    ("pitch mode not a string", _set(["nodes", "osc", "params"], {"freq_hz": {"pitch": True}}),
     "node 'osc': key 'params.freq_hz.pitch': unknown pitch mode True (one of: note)"),
    ("pitch mode missing", _set(["nodes", "osc", "params"], {"freq_hz": {"pitch": None}}),
     "node 'osc': key 'params.freq_hz.pitch': unknown pitch mode None (one of: note)"),
    ("pitch field misspelt", _set(["nodes", "osc", "params"], {"freq_hz": {"pich": "note"}}),
     "node 'osc': key 'params.freq_hz.pich': unknown field; did you mean 'pitch'?"),
    ("pitch on a unitless param", _set(["nodes", "osc", "params"], {"amp": {"pitch": "note"}}),
     "node 'osc': key 'params.amp.pitch': only a frequency in Hz on a log scale can follow the note; "
     "'amp' is unitless on a linear scale"),
    ("pitch on a time", _set(["nodes", "env", "params"], {"attack_s": {"pitch": "note"}}),
     "node 'env': key 'params.attack_s.pitch': only a frequency in Hz on a log scale can follow the note; "
     "'attack_s' is in s on a log scale"),
    ("pitch on a linear-scale frequency", _set(["nodes", "osc", "params"],
                                               {"freq_hz": {"scale": "linear", "pitch": "note"}}),
     "node 'osc': key 'params.freq_hz.pitch': only a frequency in Hz on a log scale can follow the note; "
     "'freq_hz' is in Hz on a linear scale"),
    ("pitch on a categorical", lambda raw: raw["nodes"].update(
        {"osc2": {"module": "oscillator", "params": {"waveform": {"pitch": "note"}}}}),
     "node 'osc2': key 'params.waveform.pitch': only a frequency in Hz on a log scale can follow the note; "
     "'waveform' is a categorical choice"),
    ("pitch on a fixed param", lambda raw: raw["nodes"]["osc"].update(
        {"fixed": {"waveform": "saw", "freq_hz": 220.0}, "params": {"freq_hz": {"pitch": "note"}}}),
     "node 'osc': key 'params.freq_hz.pitch': a fixed parameter does not follow the note; 'pitch' marks a free "
     "one (take freq_hz out of 'fixed', or drop the mark)"),
]


@pytest.mark.parametrize("case_id,edit,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_spec_gives_one_exact_line(tmp_path, case_id, edit, expected):
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(_edit(edit), sort_keys=False))
    with pytest.raises(SpecError) as info:
        diffmoog.Chain.load(path)
    message = str(info.value)
    assert message == f"{path}: {expected}"
    assert "\n" not in message


def test_case_count():
    assert len(CASES) >= 20


def test_base_spec_is_valid(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(BASE))
    chain = diffmoog.Chain.load(path)
    assert torch.isfinite(chain.render(chain.sample(2), duration=0.05)).all()


def test_bad_yaml_syntax(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("nodes:\n  osc: {module: oscillator\noutput: osc\n")
    with pytest.raises(SpecError) as info:
        diffmoog.Chain.load(path)
    assert str(info.value).startswith(f"{path}: invalid YAML at line ")
    assert "\n" not in str(info.value)


def test_top_level_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- osc\n- lpf\n")
    with pytest.raises(SpecError) as info:
        diffmoog.Chain.load(path)
    assert str(info.value) == f"{path}: a chain file must be a mapping with 'nodes' and 'output'"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        diffmoog.Chain.load(path)
    assert str(info.value) == f"{path}: chain file not found"


def test_unknown_chain_name():
    with pytest.raises(SpecError) as info:
        diffmoog.Chain.load("REDUCED_SIMPL")
    message = str(info.value)
    assert message.startswith("unknown chain 'REDUCED_SIMPL'; did you mean 'REDUCED_SIMPLE_")
    assert "(built-in: " in message and "MODULAR" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"nodes: \xff\xfe\x00bad\n")
    with pytest.raises(SpecError) as info:
        diffmoog.Chain.load(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 7)"


def test_unknown_parameter_at_render():
    chain = diffmoog.Chain.load("OSC")
    params = chain.sample(1)
    params["osc.freq"] = params.pop("osc.freq_hz")
    with pytest.raises(SpecError, match=r"key 'osc.freq': unknown parameter; did you mean 'osc.freq_hz'\?"):
        chain.render(params)


def test_errors_are_diffmoog_errors():
    assert issubclass(SpecError, DiffmoogError)


# -- fuzzing -------------------------------------------------------------------------------------

VALID = [load_spec(path).raw for path in builtin_chains().values()]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["oscillator", "filter", "lfo", "saw", "lowpass", "freq_hz", "osc", "env",
                     "range", "log", "normal", "nodes", "inputs", "control", "cutoff_hz"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)


def _paths(obj, prefix=()):
    """Every (container path, key) inside nested dicts/lists."""
    out = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append(prefix + (key,))
            out.extend(_paths(value, prefix + (key,)))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.append(prefix + (i,))
            out.extend(_paths(value, prefix + (i,)))
    return out


def _container(raw, path):
    target = raw
    for key in path[:-1]:
        target = target[key]
    return target


@st.composite
def mutated_specs(draw):
    raw = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(raw)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _container(raw, path)
        action = draw(st.sampled_from(["drop", "replace", "insert"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif isinstance(parent, dict):
            parent[draw(st.one_of(st.text(max_size=10), st.sampled_from(
                ["module", "inputs", "fixed", "params", "active", "range", "weights", "type"])))] = draw(values)
        else:
            parent.append(draw(values))
    return raw


@pytest.mark.fuzz
@given(mutated_specs())
def test_fuzzed_specs_load_or_raise_spec_error(raw):
    try:
        chain = diffmoog.Chain.from_dict(raw, source="fuzz.yaml")
    except SpecError as err:
        assert str(err).startswith("fuzz.yaml") and "\n" not in str(err)
        return
    # A spec that loads must also sample and render (tiny render, fixed settings).
    params = chain.sample(2, seed=0)
    audio = chain.render(params, sample_rate=16000, duration=0.01, note_off=0.005)
    assert audio.shape == (2, 160)


@pytest.mark.fuzz
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_files_load_or_raise_spec_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "chain.yaml"
    path.write_bytes(data)
    try:
        diffmoog.Chain.load(path)
    except SpecError:
        pass
