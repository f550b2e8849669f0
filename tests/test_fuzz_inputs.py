"""Fuzzers for the YAML files users write: any text loads or gives the tool's one-line error.

Derandomised in `make test` (tests/conftest.py); `make fuzz` runs them with fresh examples.
The chain-spec fuzzers live beside the chain error cases in test_core_spec_errors.py.
"""
import copy
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import diffmoog
from diffmoog import yaml_io
from diffmoog.errors import ConfigError, SpecError
from diffmoog.preset import load_preset, preset_text
from diffmoog.spec import builtin_chains
from diffmoog.train import config as config_mod

pytestmark = pytest.mark.fuzz
REPO = Path(__file__).resolve().parent.parent

# YAML fragments that exercise anchors, aliases, merges, tags and number notations.
TOKENS = ["a: ", "- ", "&x ", "*x", "&y ", "*y", "[", "]", "{", "}", ", ", ": ", "\n", "  ", "<<: ",
          "!!str ", "!!float ", "1e6", "-1E-3", ".inf", ".nan", "0x1f", "1_000", "on", "~", "'q'",
          '"\\u00e9"', "#c", "|\n  ", "? ", "---\n", "..."]
yaml_texts = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=40).map("".join)


@given(yaml_texts)
def test_any_text_parses_or_raises_a_yaml_error(text):
    try:
        yaml_io.loads(text)
    except yaml.YAMLError as error:
        assert yaml_io.describe(error) and "\n" not in yaml_io.describe(error).strip()


@given(st.integers(1, 12), st.integers(1, 12))
def test_nested_aliases_are_bounded_before_expanding(depth, width):
    lines = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth + 1)]
    text = "\n".join(lines) + "\n"
    expanded = sum(width ** i for i in range(depth + 1)) * 2  # nodes, roughly
    try:
        data = yaml_io.loads(text)
    except yaml_io.YamlLimitError:
        assert expanded > yaml_io.MAX_EXPANDED_NODES / 4
        return
    assert len(data) == depth + 1


@pytest.mark.parametrize("text", ["!!float ", "a: !!float ''", "!!int x", "!!float 1e999999"])
def test_bad_tagged_values_are_yaml_errors(text):
    """`make fuzz` find: PyYAML's float constructor raised IndexError on an empty `!!float`."""
    try:
        yaml_io.loads(text)
    except yaml.YAMLError as error:
        assert "\n" not in yaml_io.describe(error)


def test_a_config_key_with_a_newline_gives_one_line():
    """`make fuzz` find: an unknown config key holding a newline printed a two-line error."""
    with pytest.raises(ConfigError) as info:
        config_mod.from_dict({"optim": {"l\nr": 1}}, "fuzz.yaml")
    assert "\n" not in str(info.value) and "fuzz.yaml" in str(info.value)


# -- presets -----------------------------------------------------------------------------------
PRESET_CHAIN = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
PRESET = yaml.safe_load(preset_text(PRESET_CHAIN, PRESET_CHAIN.sample(1, seed=3)))
values = st.one_of(st.none(), st.booleans(), st.integers(-10**7, 10**7),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                   st.lists(st.floats(), max_size=2))


@given(st.dictionaries(st.sampled_from(list(PRESET["preset"]["params"]) + ["saw.freq", "x.y", "format"]),
                       values, max_size=4),
       st.one_of(st.none(), st.integers(), st.text(max_size=4)))
def test_mutated_presets_load_in_range_or_raise_spec_error(tmp_path_factory, changes, seed):
    raw = copy.deepcopy(PRESET)
    raw["preset"]["params"].update(changes)
    if seed is not None:
        raw["preset"]["seed"] = seed
    path = tmp_path_factory.mktemp("preset") / "p.preset.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        preset = load_preset(path)
    except SpecError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
        return
    for key, value in preset.params.items():
        if value.is_floating_point():
            assert math.isfinite(float(value.min())) and 0.0 <= float(value.min()) <= float(value.max()) <= 1.0, key


# -- training configs --------------------------------------------------------------------------
CONFIGS = [yaml.safe_load(path.read_text()) for path in sorted((REPO / "configs").glob("*.yaml"))]
config_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                          st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                          st.sampled_from(["cosine", "gru", "l1", "logmel", "cuda", "1e-3"]),
                          st.dictionaries(st.text(max_size=6), st.integers(), max_size=2))


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


@given(st.sampled_from(range(len(CONFIGS))), st.data())
def test_mutated_configs_load_or_raise_config_error(index, data):
    raw = copy.deepcopy(CONFIGS[index])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(raw))))
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(config_values)
        else:
            parent[data.draw(st.text(max_size=6))] = data.draw(config_values)
    try:
        config_mod.from_dict(raw, "fuzz.yaml")
    except ConfigError as error:
        assert "\n" not in str(error)


def test_builtin_chains_still_load():
    """The fuzzers' seeds are valid to begin with."""
    assert all(diffmoog.Chain.load(path) for path in builtin_chains().values())
