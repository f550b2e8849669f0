"""Trainer building blocks: config schema, ramps, features, losses, metrics, overfitting a batch."""
import math

import numpy as np
import pytest
import torch

from diffmoog import Chain
from diffmoog.analysis.metrics import param_metrics
from diffmoog.chain import SEED_KEY
from diffmoog.errors import ConfigError
from diffmoog.train import config as config_mod
from diffmoog.train.config import LossConfig, Ramp
from diffmoog.train.encoders import Encoder
from diffmoog.train.losses import WassersteinTimeLoss
from diffmoog.train.objective import Objective
from diffmoog.train.schedule import lr_factor, ramp_value

REPO_CONFIGS = ["params_only", "synth", "real", "mixed"]


@pytest.fixture(scope="module")
def chain():
    return Chain.load("REDUCED_SIMPLE_OSC")


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REPO_CONFIGS)
def test_shipped_configs_load(name):
    cfg = config_mod.load(f"configs/{name}.yaml")
    assert cfg.run.name == name
    assert cfg.chain == "REDUCED_SIMPLE_OSC"


def test_overrides_keep_defaults_and_types():
    cfg = config_mod.load(None, ["losses.param.weight.end=0", "train.steps=7", "model.channels=[8, 16]",
                                 "losses.mrstft.weight=2", "data.train=null"])
    assert cfg.losses.param.weight == Ramp(start=1.0, end=0.0)  # the schema's start=1 survives
    assert cfg.losses.mrstft.weight == Ramp(start=2.0)
    assert cfg.train.steps == 7 and cfg.model.channels == [8, 16] and cfg.data.train is None


def test_round_trip_through_dict():
    cfg = config_mod.load("configs/synth.yaml")
    assert config_mod.from_dict(config_mod.to_dict(cfg)) == cfg


@pytest.mark.parametrize("override, message", [
    ("model.kidn=gru", "unknown key 'model.kidn'; did you mean 'kind'?"),
    ("trian.steps=3", "unknown key 'trian'; did you mean 'train'?"),
    ("train.steps=many", "key 'train.steps': expected an integer, got 'many'"),
    ("train.hard_categorical=3", "expected true/false"),
    ("model.kind=rnn", "unknown value 'rnn'"),
    ("train.steps.max=3", "'train.steps' has no sub-keys"),
    ("train.steps", "expected key=value"),
    ("losses.param.weight={start: 1, end: 0, start_step: 5, end_step: 2}", "end_step must be >= start_step"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=".*" + message.replace("(", r"\(").replace("?", r"\?")):
        config_mod.load(None, [override])


def test_unknown_yaml_key_names_file_and_suggests(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("chain: REDUCED_SIMPLE_OSC\noptim:\n  lr: 0.001\n  weight_decai: 0.1\n")
    with pytest.raises(ConfigError) as err:
        config_mod.load(path)
    assert str(path) in str(err.value) and "did you mean 'weight_decay'" in str(err.value)


# -- ramps and learning rate -------------------------------------------------------------------
def test_ramp_values():
    ramp = Ramp(start=1.0, end=0.0, start_step=10, end_step=20)
    assert [ramp_value(ramp, s) for s in (0, 10, 15, 20, 100)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert ramp_value(Ramp(start=0.3), 12345) == 0.3
    step_change = Ramp(start=0.0, end=2.0, start_step=5, end_step=5)
    assert [ramp_value(step_change, s) for s in (4, 5, 6)] == [0.0, 2.0, 2.0]


def test_lr_schedule():
    cfg = config_mod.OptimConfig(scheduler="cosine", warmup_steps=10)
    assert lr_factor(cfg, 0, 110) == pytest.approx(0.1)
    assert lr_factor(cfg, 10, 110) == pytest.approx(1.0)
    assert lr_factor(cfg, 60, 110) == pytest.approx(0.5)
    assert lr_factor(cfg, 110, 110) == pytest.approx(0.0, abs=1e-12)
    step = config_mod.OptimConfig(scheduler="step", step_size=5, gamma=0.5)
    assert [lr_factor(step, s, 100) for s in (0, 4, 5, 10)] == [1.0, 1.0, 0.5, 0.25]


# -- metrics and losses ---------------------------------------------------------------------------
def test_param_metrics_in_physical_units(chain):
    target = chain.sample(3, seed=1)
    pred = dict(target)
    pred["lpf.cutoff_hz"] = chain.free_param("lpf.cutoff_hz").param.to_normalized(
        chain.to_physical(target)["lpf.cutoff_hz"] + 100.0)
    out = param_metrics(chain, pred, target)
    assert torch.allclose(out["param_mae/lpf.cutoff_hz"], torch.full((3,), 100.0), rtol=1e-3)
    assert torch.allclose(out["param_mae/saw.freq_hz"], torch.zeros(3))


def test_wasserstein_grows_with_time_shift():
    sr = 8000
    t = torch.arange(sr) / sr
    tone = torch.sin(2 * math.pi * 440 * t)

    def burst(start_s):
        return tone * ((t >= start_s) & (t < start_s + 0.1)).float()

    loss = WassersteinTimeLoss(sr, n_fft=256, hop=64)
    d1 = loss(burst(0.3)[None], burst(0.2)[None])
    d2 = loss(burst(0.5)[None], burst(0.2)[None])
    assert float(loss(burst(0.2)[None], burst(0.2)[None])) < 1e-6
    assert float(d1) == pytest.approx(0.1, rel=0.15)  # W1 in seconds ~ the shift
    assert float(d2) == pytest.approx(0.3, rel=0.15)


# -- gradients through the synth ----------------------------------------------------------------
def _objective(synth, **weights):
    losses = LossConfig()
    losses.param.weight = Ramp(start=weights.pop("param", 0.0))
    for name, value in weights.items():
        getattr(losses, name).weight = Ramp(start=value)
    return Objective(synth, losses, Ramp(start=0.0))


@pytest.mark.parametrize("term", ["mrstft", "logmel", "wasserstein", "chain"])
def test_spectral_gradients_reach_encoder(chain, term):
    torch.manual_seed(0)
    cfg = config_mod.load(None, ["model.hidden=32", "model.layers=1"])
    model = Encoder.for_chain(chain, cfg.features, cfg.model)
    params = chain.sample(2, seed=3)
    audio = chain.render(params, duration=0.25)
    loss, logged = _objective(chain, **{term: 1.0})(model(audio), {"audio": audio, "params": params}, 0,
                                                    chain.spec.note_off)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert torch.isfinite(grads).all() and grads.abs().sum() > 0
    assert set(logged) == {term}


@pytest.mark.parametrize("term", ["param", "mrstft", "logmel", "wasserstein"])
def test_loss_terms_fall_along_their_gradient(chain, term):
    """Each loss term alone decreases along its negative gradient (an Armijo line search).

    For a differentiable loss some step t satisfies L(x - t*g) <= L(x) - c*t*|g|^2, so this checks
    the gradient points downhill without following a training path. (A 12-step Adam path used to
    be checked; spectral losses are so rough in the oscillator frequencies that rounding-level
    differences in the render could leave it above its start.) The oscillator frequencies are
    held at the target's, where the spectral losses are smooth in the remaining knobs; the
    encoder's own gradient is checked by test_spectral_gradients_reach_encoder.
    """
    objective = _objective(chain, **{term: 1.0})
    target = chain.sample(3, seed=11)
    audio = chain.render(target, duration=0.25)
    batch = {"audio": audio, "params": target}
    guess = {k: v for k, v in chain.sample(3, seed=4).items() if k != SEED_KEY}
    free = [k for k in guess if not k.endswith("freq_hz")]
    for key in guess:
        if key not in free:
            guess[key] = target[key].clone()

    def loss_at(values):
        return objective({**guess, **values}, batch, 0, chain.spec.note_off)[0]

    start = {k: guess[k].clone().requires_grad_(True) for k in free}
    loss = loss_at(start)
    grads = dict(zip(free, torch.autograd.grad(loss, [start[k] for k in free])))
    slope = float(sum((g * g).sum() for g in grads.values()))
    loss = loss.detach()
    assert math.isfinite(float(loss)) and slope > 0
    tried = []
    with torch.no_grad():
        for step in [0.5 / math.sqrt(slope) * 0.5 ** k for k in range(12)]:
            new = float(loss_at({k: start[k] - step * grads[k] for k in free}))
            tried.append((f"{step:.2g}", f"{new:.6g}"))
            # c = 0.1, and a decrease far above float32 rounding of the loss.
            if new <= float(loss) - 0.1 * step * slope and float(loss) - new > 1e-5 * float(loss):
                return
    pytest.fail(f"{term}: no step along -grad lowered the loss {float(loss):.6g}: {tried}")


def test_param_loss_overfits_a_fixed_batch(chain):
    """The parameter loss is smooth: 20 Adam steps on 3 sounds cut it well below its start."""
    torch.manual_seed(0)
    cfg = config_mod.load(None, ["model.hidden=48", "model.layers=1"])
    model = Encoder.for_chain(chain, cfg.features, cfg.model)
    objective = _objective(chain, param=1.0)
    params = chain.sample(3, seed=11)
    audio = chain.render(params, duration=0.25)
    batch = {"audio": audio, "params": params}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for _ in range(20):
        loss, _ = objective(model(audio), batch, 0, chain.spec.note_off)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in history)
    assert np.mean(history[-3:]) < 0.7 * history[0], history


def test_step_sampler_shards_the_global_batch_and_resumes():
    from diffmoog.train.data import StepSampler
    single = StepSampler(10, 4, seed=3, start_step=0, total_steps=6)
    ranks = [StepSampler(10, 2, seed=3, start_step=0, total_steps=6, rank=r, world=2) for r in (0, 1)]
    for step in range(6):
        assert single.indices(step) == ranks[0].indices(step) + ranks[1].indices(step)
    seen = [i for step in range(5) for i in single.indices(step)]  # 20 draws = 2 epochs of 10
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    resumed = StepSampler(10, 4, seed=3, start_step=4, total_steps=6)
    assert list(resumed) == [single.indices(4), single.indices(5)]
