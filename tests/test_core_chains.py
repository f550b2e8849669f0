"""The chain library and the Chain API: rendering, layout round trips, determinism, encoders."""
import math

import pytest
import torch

import diffmoog
from diffmoog.chain import SEED_KEY
from diffmoog.params import Param
from diffmoog.spec import builtin_chains, chains_dir, resolve_chain

CHAINS = sorted(builtin_chains())

# Every DiffMoog chain that describes a real patch, plus our additions.
EXPECTED = {
    "REDUCED_SIMPLE_OSC", "REDUCED_SIMPLE_FILTER", "REDUCED", "SAW_SQUARE_MIX",
    "SAW_SQUARE_MIX_FILTER", "MODULAR", "MODULAR_NEW", "NO_FILTER", "FM_DX7", "BASIC_FLOW",
    "BASIC_FLOW_LFO_DECOUPLING", "BASIC_FLOW_NO_ADSR", "BASIC_FLOW_NO_FILTER",
    "BASIC_FLOW_NO_ADSR_NO_FILTER", "LFO", "SINE_LFO", "NON_SINE_LFO", "DOUBLE_LFO", "LFO_SIN",
    "LFO_SAW", "LFO_SQUARE", "TWO_LFO_SAW", "FM", "FM_ONLY", "FM_SINE", "FM_SAW", "FM_SQUARE",
    "DOUBLE_FM_ONLY", "FM_FILTER", "FM_FILTER_ADSR", "FILTER_ONLY", "OSC", "OSC_FILTER", "OSC_ADSR",
    "OSC_FILTER_SHAPER", "OSC_TREMOLO", "DRUM", "MORPH_OSC",
}


def test_library_has_every_ported_chain():
    assert EXPECTED <= set(CHAINS), sorted(EXPECTED - set(CHAINS))


@pytest.mark.parametrize("name", CHAINS)
def test_chain_metadata(name):
    chain = diffmoog.Chain.load(name)
    assert chain.spec.name == name  # the name inside the file matches the file name
    assert len(chain.spec.description) > 20
    assert chain.free_params, "a chain with nothing to learn is not a patch"
    assert chain.spec.output in chain.spec.nodes


@pytest.mark.parametrize("sample_rate", [16000, 44100])
@pytest.mark.parametrize("name", CHAINS)
def test_every_chain_renders_finite_audio(name, sample_rate):
    chain = diffmoog.Chain.load(name)
    params = chain.sample(3, seed=11)
    audio, nodes = chain.render(params, sample_rate=sample_rate, duration=0.25, return_nodes=True)
    assert audio.shape == (3, round(0.25 * sample_rate))
    assert audio.dtype == torch.float32
    assert torch.isfinite(audio).all()
    assert set(nodes) == set(chain.spec.nodes)
    for signal in nodes.values():
        assert signal.shape == audio.shape and torch.isfinite(signal).all()
    # The defaults are a patch too.
    default_audio = chain.render(chain.defaults(1), sample_rate=sample_rate, duration=0.25)
    assert torch.isfinite(default_audio).all() and default_audio.abs().max() > 1e-3


@pytest.mark.parametrize("name", CHAINS)
def test_sampled_patches_are_audible(name):
    """Every sampled patch is heard (peak above -60 dBFS) and stays below +24 dBFS."""
    chain = diffmoog.Chain.load(name)
    duration = min(chain.spec.duration, 1.0)
    audio = chain.render(chain.sample(6, seed=3), duration=duration)
    peaks = audio.abs().amax(dim=-1)
    assert (peaks > 1e-3).all(), peaks
    assert (peaks < 16.0).all(), peaks


def test_names_resolve_case_insensitively_and_paths_load():
    assert resolve_chain("reduced") == resolve_chain("REDUCED") == chains_dir() / "reduced.yaml"
    by_path = diffmoog.Chain.load(chains_dir() / "modular.yaml")
    by_name = diffmoog.Chain.load("Modular")
    assert by_path.param_keys == by_name.param_keys


def test_filter_envelopes_are_wired_into_the_cutoff():
    for name in ("REDUCED", "MODULAR", "MODULAR_NEW", "OSC_FILTER_SHAPER"):
        spec = diffmoog.Chain.load(name).spec
        wired = [n for n in spec.nodes.values() if n.module == "filter" and "cutoff_hz" in n.control]
        assert wired, name
        assert spec.nodes[wired[0].control["cutoff_hz"]].module == "adsr"


def test_modular_switches_and_fm_lfo():
    chain = diffmoog.Chain.load("MODULAR")
    spec = chain.spec
    assert spec.nodes["fm_lfo"].control == {"freq_hz": "lfo"}
    assert {"lfo.active", "fm_lfo.active", "tremolo.active"} <= set(chain.param_keys)
    # With the FM-LFO switched off, the carriers hold a steady pitch: the saw node repeats.
    params = chain.defaults(1)
    params["fm_lfo.active"] = torch.tensor([[1.0, 0.0]])
    _, nodes = chain.render(params, duration=0.5, return_nodes=True)
    assert torch.equal(nodes["fm_lfo"], torch.zeros_like(nodes["fm_lfo"]))
    params["fm_lfo.active"] = torch.tensor([[0.0, 1.0]])
    _, nodes_on = chain.render(params, duration=0.5, return_nodes=True)
    assert nodes_on["fm_lfo"].abs().max() > 0.5


def _zero_crossing_rate(x: torch.Tensor) -> float:
    return float((torch.sign(x[1:]) != torch.sign(x[:-1])).float().mean())


def test_drum_kick_pitch_falls_and_hat_is_bright():
    chain = diffmoog.Chain.load("DRUM")
    kick = chain.to_normalized({
        **{k: v for k, v in chain.to_physical(chain.defaults(1)).items()},
        "tone.freq_hz": torch.tensor([50.0]), "tone.mod_index": torch.tensor([3.0]),
        "pitch_env.decay_s": torch.tensor([0.05]), "mix.level_noise_vca": torch.tensor([0.05]),
    })
    _, nodes = chain.render(kick, duration=0.5, return_nodes=True)
    tone = nodes["tone"][0]
    early, late = tone[: 800], tone[4000:8000]  # first 50 ms vs 250..500 ms at 16 kHz
    assert _zero_crossing_rate(early) > 1.8 * _zero_crossing_rate(late)  # ~110 Hz vs 50 Hz
    hat_physical = chain.to_physical(chain.defaults(1))
    hat_physical.update({"noise_filter.filter_type": torch.tensor([1]),  # highpass
                         "noise_filter.cutoff_hz": torch.tensor([6000.0]),
                         "mix.level_tone_vca": torch.tensor([0.05]),
                         "mix.level_noise_vca": torch.tensor([1.0])})
    hat = chain.render(chain.to_normalized(hat_physical), duration=0.5)[0]
    assert _zero_crossing_rate(hat[:400]) > 0.55  # white noise gives 0.5; a hat is brighter
    assert hat[4000:].abs().max() < 1e-2 * hat.abs().max()  # silent after 250 ms


# -- normalise / denormalise round trips ------------------------------------------------------

@pytest.mark.parametrize("scale,low,high", [("linear", -3.0, 5.0), ("log", 20.0, 20000.0),
                                            ("log", 0.001, 2.0)])
def test_param_round_trip(scale, low, high):
    param = Param("x", low=low, high=high, scale=scale, default=low)
    u = torch.linspace(0.0, 1.0, 101)
    physical = param.to_physical(u)
    assert torch.isclose(physical[0], torch.tensor(low), rtol=1e-5)
    assert torch.isclose(physical[-1], torch.tensor(high), rtol=1e-5)
    assert torch.all(physical[1:] > physical[:-1])
    assert torch.allclose(param.to_normalized(physical), u, atol=1e-5)
    if scale == "log":  # equal steps in normalised space are equal ratios
        ratios = physical[1:] / physical[:-1]
        assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-3)


@pytest.mark.parametrize("name", ["MODULAR_NEW", "DRUM", "FM_DX7", "OSC"])
def test_chain_vector_and_physical_round_trip(name):
    chain = diffmoog.Chain.load(name)
    params = chain.sample(6, seed=4)
    vector = chain.to_vector(params)
    assert vector.shape == (6, chain.vector_size)
    back = chain.from_vector(vector, seeds=params[SEED_KEY])
    assert set(back) == set(params)
    for key in chain.param_keys:
        assert torch.equal(back[key], params[key]), key
    physical = chain.to_physical(params)
    for fp in chain.free_params:
        value = physical[fp.key]
        if fp.param.is_categorical:
            assert value.dtype == torch.int64 and value.max() < len(fp.param.choices)
        else:
            assert (value >= fp.param.low * (1 - 1e-5)).all() and (value <= fp.param.high * (1 + 1e-5)).all()
    normalized = chain.to_normalized(physical)
    for key in chain.param_keys:
        assert torch.allclose(normalized[key], params[key], atol=1e-5), key
    # Categorical choices may also be given by name.
    categorical = [fp for fp in chain.free_params if fp.param.is_categorical]
    if categorical:
        fp = categorical[0]
        physical[fp.key] = [fp.param.choices[i] for i in physical[fp.key].tolist()]
        assert torch.equal(chain.to_normalized(physical)[fp.key], params[fp.key])
    # Rendering from the flat vector equals rendering from the dict.
    assert torch.equal(chain.render({**back}, duration=0.1), chain.render(params, duration=0.1))


def test_vector_slices_cover_the_vector():
    chain = diffmoog.Chain.load("MODULAR_NEW")
    slices = chain.vector_slices()
    covered = sorted(i for s in slices.values() for i in range(s.start, s.stop))
    assert covered == list(range(chain.vector_size))
    widths = {fp.key: fp.param.width for fp in chain.free_params}
    assert all(s.stop - s.start == widths[k] for k, s in slices.items())


# -- determinism --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["DRUM", "DRUM_METAL", "MODULAR", "FILTER_ONLY", "FM_DX7"])
def test_same_seed_same_item_at_any_batch_size(name):
    chain = diffmoog.Chain.load(name)
    big = chain.sample(10, seed=7)
    small = chain.sample(5, seed=7, offset=5)
    for key in big:
        assert torch.equal(big[key][5:], small[key]), key
    audio_big = chain.render(big, duration=0.3)
    audio_small = chain.render(small, duration=0.3)
    assert torch.allclose(audio_big[5:], audio_small, atol=1e-6, rtol=0)
    single = chain.render(chain.sample(1, seed=7, offset=8), duration=0.3)
    assert torch.allclose(audio_big[8:9], single, atol=1e-6, rtol=0)
    # Another seed gives other sounds.
    other = chain.sample(10, seed=8)
    assert not torch.equal(other[chain.param_keys[0]], big[chain.param_keys[0]])


def test_noise_depends_on_the_item_seed_only():
    chain = diffmoog.Chain.load("FILTER_ONLY")
    params = chain.sample(4, seed=1)
    again = chain.render(params, duration=0.2)
    assert torch.equal(chain.render(params, duration=0.2), again)
    swapped = {k: v.flip(0) for k, v in params.items()}
    assert torch.allclose(chain.render(swapped, duration=0.2).flip(0), again, atol=1e-6, rtol=0)


def test_sampling_follows_distributions():
    chain = diffmoog.Chain.load("NON_SINE_LFO")
    params = chain.sample(400, seed=0)
    choices = params["lfo.waveform"].argmax(-1)
    assert (choices != 0).all()  # weight 0 on sine
    assert len(torch.unique(choices)) == 3
    modular = diffmoog.Chain.load("MODULAR")
    on = modular.sample(2000, seed=0)["lfo.active"][:, 1].mean()
    assert abs(float(on) - 0.75) < 0.05
    drum = diffmoog.Chain.load("DRUM")
    decay = drum.to_physical(drum.sample(500, seed=0))["tone_env.decay_s"]
    assert decay.min() >= 0.03 - 1e-6 and decay.max() <= 0.8 + 1e-6
    # log-uniform: the geometric midpoint splits the samples in half
    below = float((decay < math.sqrt(0.03 * 0.8)).float().mean())
    assert 0.4 < below < 0.6


# -- encoder-style inputs ------------------------------------------------------------------------

class _TinyEncoder(torch.nn.Module):
    """Stand-in for a trained encoder: continuous heads in [0,1], categorical logits."""

    def __init__(self, chain, features=8):
        super().__init__()
        self.chain = chain
        self.heads = torch.nn.ModuleDict({
            fp.key.replace(".", "__"): torch.nn.Linear(features, fp.param.width)
            for fp in chain.free_params})

    def forward(self, z):
        out = {}
        for fp in self.chain.free_params:
            value = self.heads[fp.key.replace(".", "__")](z)
            out[fp.key] = value if fp.param.is_categorical else torch.sigmoid(value[:, 0])
        return out


@pytest.mark.parametrize("hard", [False, True])
def test_render_is_a_layer_in_a_training_graph(hard):
    torch.manual_seed(0)
    chain = diffmoog.Chain.load("MODULAR_NEW")
    encoder = _TinyEncoder(chain)
    z = torch.randn(3, 8)
    params = chain.from_logits(encoder(z), hard=hard)
    for fp in chain.free_params:
        if fp.param.is_categorical:
            weights = params[fp.key]
            assert torch.allclose(weights.sum(-1), torch.ones(3))
            if hard:
                one_hot = torch.nn.functional.one_hot(weights.detach().argmax(-1), weights.shape[-1])
                assert torch.allclose(weights.detach(), one_hot.float(), atol=1e-6)
    target = chain.render(chain.sample(3, seed=0), duration=0.2)
    audio = chain.render(params, duration=0.2)
    loss = torch.nn.functional.mse_loss(audio, target)
    loss.backward()
    for name, weight in encoder.named_parameters():
        assert weight.grad is not None and torch.isfinite(weight.grad).all(), name
    # Gradients reach the heads of categorical choices too (softmax or straight-through).
    cat_head = encoder.heads["filter__filter_type"].weight.grad
    assert cat_head.abs().sum() > 0
    cont_head = encoder.heads["saw__freq_hz"].weight.grad
    assert cont_head.abs().sum() > 0


def test_normalised_tensors_requiring_grad_render():
    chain = diffmoog.Chain.load("REDUCED")
    params = {k: v.clone().requires_grad_() for k, v in chain.sample(2, seed=0).items() if k != SEED_KEY}
    audio = chain.render(params, duration=0.2)
    (audio ** 2).mean().backward()
    for key, value in params.items():
        assert value.grad is not None and torch.isfinite(value.grad).all(), key
    vector = chain.to_vector(chain.sample(2, seed=0)).requires_grad_()
    chain.render(vector, duration=0.2).pow(2).mean().backward()
    assert torch.isfinite(vector.grad).all() and vector.grad.abs().sum() > 0


def test_range_overrides_reach_the_module():
    """A chain's `range` override changes what the module renders, not just sampling."""
    raw = {"nodes": {"osc": {"module": "oscillator", "fixed": {"waveform": "sine"},
                             "params": {"freq_hz": {"range": [100.0, 200.0]}}}},
           "output": "osc"}
    chain = diffmoog.Chain.from_dict(raw)
    params = chain.defaults(1)
    params["osc.freq_hz"] = torch.tensor([1.0])
    audio = chain.render(params, duration=1.0)[0]
    crossings = int((torch.sign(audio[1:]) != torch.sign(audio[:-1])).sum())
    assert abs(crossings - 400) <= 2  # 200 Hz: two zero crossings per cycle
