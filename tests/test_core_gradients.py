"""Every continuous parameter of every module gets a finite, nonzero gradient that agrees with
central finite differences (float64, small renders)."""
import pytest
import torch

import diffmoog
from diffmoog.chain import SEED_KEY
from diffmoog.modules import MODULES

SR = 16000


def _chain(nodes, output):
    return diffmoog.Chain.from_dict({"nodes": nodes, "output": output, "sample_rate": SR})


# name -> (chain nodes, output, physical values of the free params, duration s, note-off s).
# Values are chosen so each parameter genuinely matters inside the window (e.g. the attack
# ends and the release starts within it). Segment ends avoid exact sample instants, where a
# piecewise envelope has a kink and a one-sided autograd slope differs from a central difference.
CASES = {
    **{f"osc_{shape}_{band}": (
        {"osc": {"module": "oscillator", "fixed": {"waveform": shape}}}, "osc",
        {"osc.freq_hz": freq, "osc.amp": 0.7}, 0.05, 1.0)
       for shape in ("sine", "saw", "square", "triangle")
       # 220 Hz renders with PolyBLEP, 2500 Hz with the additive path.
       for band, freq in (("low", 220.0), ("high", 2500.0))},
    "morph": ({"osc": {"module": "morph_oscillator"}}, "osc",
              {"osc.freq_hz": 300.0, "osc.amp": 0.6, "osc.shape": 0.45}, 0.05, 1.0),
    "lfo_fm": ({
        "lfo": {"module": "lfo", "fixed": {"waveform": "sine"}},
        "fm_lfo": {"module": "lfo", "control": {"freq_hz": "lfo"}, "fixed": {"waveform": "triangle"}},
        "fm": {"module": "fm_oscillator", "control": {"freq_hz": "fm_lfo"}, "fixed": {"waveform": "saw"}},
    }, "fm", {"lfo.freq_hz": 7.0, "fm_lfo.freq_hz": 9.0, "fm_lfo.mod_index": 1.0,
              "fm.freq_hz": 330.0, "fm.amp": 0.5, "fm.mod_index": 0.7}, 0.1, 1.0),
    "pm": ({
        "mod": {"module": "oscillator", "fixed": {"waveform": "sine"}},
        "pm": {"module": "pm_oscillator", "control": {"phase": "mod"}, "fixed": {"waveform": "sine"}},
    }, "pm", {"mod.freq_hz": 150.0, "mod.amp": 0.8, "pm.freq_hz": 440.0, "pm.amp": 0.5,
              "pm.mod_index": 2.0}, 0.05, 1.0),
    "pm_square": ({
        "mod": {"module": "oscillator", "fixed": {"waveform": "sine", "amp": 1.0}},
        "pm": {"module": "pm_oscillator", "control": {"phase": "mod"}, "fixed": {"waveform": "square"}},
    }, "pm", {"mod.freq_hz": 90.0, "pm.freq_hz": 200.0, "pm.amp": 0.5, "pm.mod_index": 1.5}, 0.05, 1.0),
    "adsr_vca": ({
        "osc": {"module": "oscillator", "fixed": {"waveform": "sine", "freq_hz": 440.0}},
        "env": {"module": "adsr"},
        "vca": {"module": "vca", "inputs": ["osc"], "control": {"gain": "env"}},
    }, "vca", {"osc.amp": 0.8, "env.attack_s": 0.0213, "env.decay_s": 0.0311, "env.sustain_level": 0.6,
               "env.release_s": 0.0413, "env.curve": 0.5, "vca.gain": 0.9}, 0.15, 0.0813),
    "noise_mixer": ({
        "noise": {"module": "noise"},
        "osc": {"module": "oscillator", "fixed": {"waveform": "sine", "freq_hz": 440.0, "amp": 0.5}},
        "mix": {"module": "mixer", "inputs": ["noise", "osc"]},
    }, "mix", {"noise.amp": 0.3, "mix.level_noise": 0.6, "mix.level_osc": 0.4}, 0.05, 1.0),
    "tremolo": ({
        "osc": {"module": "oscillator", "fixed": {"waveform": "sine", "freq_hz": 440.0, "amp": 0.8}},
        "trem": {"module": "tremolo", "inputs": ["osc"]},
    }, "trem", {"trem.rate_hz": 6.0, "trem.depth": 0.5}, 0.1, 1.0),
    **{f"filter_{kind}": ({
        "noise": {"module": "noise", "fixed": {"amp": 0.5}},
        "env": {"module": "adsr", "fixed": {"attack_s": 0.01, "decay_s": 0.02, "sustain_level": 0.5,
                                            "release_s": 0.02, "curve": 0.3}},
        "filter": {"module": "filter", "inputs": ["noise"], "control": {"cutoff_hz": "env"},
                   "fixed": {"filter_type": kind}},
    }, "filter", {"filter.cutoff_hz": 500.0, "filter.q": 2.0, "filter.cutoff_mod_oct": 2.0}, 0.05, 0.03)
       for kind in ("lowpass", "highpass", "bandpass")},
}


def _setup(case, dtype=torch.float64):
    nodes, output, physical, duration, note_off = CASES[case]
    chain = _chain(nodes, output)
    assert set(chain.param_keys) == set(physical), "every free parameter gets an explicit value"
    normalized = chain.to_normalized({k: torch.tensor([v]) for k, v in physical.items()})
    params = {k: v.to(dtype) for k, v in normalized.items()}
    params[SEED_KEY] = torch.tensor([3])
    n = round(duration * SR)
    weights = torch.randn(1, n, generator=torch.Generator().manual_seed(0), dtype=dtype)

    def loss(values):
        audio = chain.render({**params, **values}, duration=duration, note_off=note_off)
        return (audio * weights).sum()  # a random projection: no accidental cancellation

    return chain, params, loss


def _covered():
    """(module type, parameter) pairs exercised by CASES."""
    pairs = set()
    for case in CASES:
        chain = _chain(CASES[case][0], CASES[case][1])
        for fp in chain.free_params:
            module = chain.spec.nodes[fp.node].module
            name = "level_<input>" if fp.param.name.startswith("level_") else fp.param.name
            pairs.add((module, name))
    return pairs


def test_cases_cover_every_continuous_parameter_of_every_module():
    wanted = set()
    for type_name, module in MODULES.items():
        for param in module.PARAMS + tuple(p for ps in module.CONTROL_PORTS.values() for p in ps):
            if not param.is_categorical and param.learnable:
                wanted.add((type_name, param.name))
    if "mixer" in MODULES:
        wanted.add(("mixer", "level_<input>"))
    assert wanted <= _covered(), sorted(wanted - _covered())


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_are_finite_nonzero_and_match_finite_differences(case):
    chain, params, loss = _setup(case)
    leaves = {k: params[k].clone().requires_grad_() for k in chain.param_keys}
    loss(leaves).backward()
    eps = 1e-6
    for key, leaf in leaves.items():
        grad = leaf.grad
        assert grad is not None and torch.isfinite(grad).all(), key
        assert grad.abs().item() > 1e-6, f"{key}: zero gradient"
        with torch.no_grad():
            plus = loss({key: params[key] + eps}).item()
            minus = loss({key: params[key] - eps}).item()
        numeric = (plus - minus) / (2 * eps)
        analytic = grad.item()
        assert abs(analytic - numeric) <= 2e-3 * max(abs(analytic), abs(numeric)) + 1e-6, \
            f"{key}: autograd {analytic:.6g} vs finite difference {numeric:.6g}"


def test_gradcheck_small_filter_sweep():
    """torch.autograd.gradcheck through a time-varying biquad (torchlpc's backward pass)."""
    chain, params, _ = _setup("filter_lowpass")
    keys = chain.param_keys

    def fn(*values):
        audio = chain.render({**params, **dict(zip(keys, values))}, duration=0.01, note_off=0.005)
        return audio[:, ::4]

    inputs = tuple(params[k].clone().requires_grad_() for k in keys)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_float32_gradients_are_finite_for_every_chain():
    """The library's chains backpropagate in float32 (what training uses) without NaNs."""
    for name in ("MODULAR_NEW", "DRUM", "DRUM_METAL", "FM_DX7", "REDUCED"):
        chain = diffmoog.Chain.load(name)
        sampled = chain.sample(2, seed=1)
        params = {k: v.clone().requires_grad_() if v.is_floating_point() else v
                  for k, v in sampled.items()}
        chain.render(params, duration=0.2).pow(2).mean().backward()
        for key in chain.param_keys:
            assert torch.isfinite(params[key].grad).all(), (name, key)
