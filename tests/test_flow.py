"""The preset posterior (train/flow.py): its vector layout, loss, sampling, and best-of-K matching."""
import pytest
import torch

from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError
from diffmoog.match.matcher import Matcher
from diffmoog.train import config as config_mod
from diffmoog.train.flow import CHOICE_LOGIT_SCALE, REFERENCE_HZ, FlowEncoder, PresetVector

TWO_OSC_CHOICE = {
    "name": "TWO_OSC_CHOICE", "duration": 0.5, "note_off": 0.3,
    "nodes": {
        "lead": {"module": "oscillator", "params": {"freq_hz": {"pitch": "note"}}},
        "sub": {"module": "oscillator", "fixed": {"waveform": "sine"}, "params": {"freq_hz": {"pitch": "note"}}},
        "mix": {"module": "mixer", "inputs": ["lead", "sub"]},
    },
    "output": "mix",
}


def small_flow(chain, **flow):
    cfg = config_mod.from_dict({"model": {"hidden": 32, "layers": 1, "head": "flow",
                                          "flow": {"hidden": 32, "blocks": 1, "sample_steps": 3, **flow}}})
    torch.manual_seed(0)
    return FlowEncoder.for_chain(chain, cfg.features, cfg.model).eval()


def physical(chain, params, key):
    return chain.free_param(key).param.to_physical(params[key].double())


def test_vector_layout_is_pitch_relative_and_round_trips():
    chain = Chain.from_dict(TWO_OSC_CHOICE)
    vector = PresetVector(chain)
    kinds = {key: kind for key, kind, _ in vector.columns}
    assert kinds["lead.freq_hz"] == kinds["sub.freq_hz"] == "pitch"
    assert kinds["lead.waveform"] == "choice" and kinds["lead.amp"] == "value"
    params = chain.sample(6, seed=3)
    pitch = physical(chain, params, "lead.freq_hz").float()
    x = vector.encode(params, pitch)
    assert x.shape == (6, vector.dim)
    # The oscillator that plays the note sits at 0, whatever the note.
    lead = vector.columns[[k for k, _, _ in vector.columns].index("lead.freq_hz")][2]
    assert torch.allclose(x[:, lead], torch.zeros(6, 1), atol=1e-4)
    back = chain.from_logits(vector.decode(x, pitch), hard=True)
    for fp in chain.free_params:
        if fp.param.is_categorical:
            assert torch.equal(back[fp.key].argmax(-1), params[fp.key].argmax(-1))
        else:
            assert torch.allclose(back[fp.key], params[fp.key], atol=1e-4), fp.key
    # Choices are a relaxed one-hot in {-1, +1}, read back as logits.
    choice = vector.columns[[k for k, _, _ in vector.columns].index("lead.waveform")][2]
    assert set(x[:, choice].unique().tolist()) <= {-1.0, 1.0}
    assert vector.decode(x, pitch)["lead.waveform"].abs().max() == pytest.approx(CHOICE_LOGIT_SCALE)


def test_loss_trains_embedding_and_velocity_and_is_finite():
    chain = Chain.from_dict(TWO_OSC_CHOICE)
    model = small_flow(chain).train()
    params = chain.sample(4, seed=1)
    audio = chain.render(params)
    pitch = physical(chain, params, "lead.freq_hz").float()
    loss = model(audio, pitch, target={k: v for k, v in params.items() if k != SEED_KEY})
    assert torch.isfinite(loss) and loss.ndim == 0
    loss.backward()
    for name in ("embedder.body.project.0.weight", "velocity.inp.weight", "velocity.out.1.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_sampling_is_deterministic_batched_and_starts_with_the_point_estimate():
    chain = Chain.from_dict(TWO_OSC_CHOICE)
    model = small_flow(chain)
    audio = chain.render(chain.sample(2, seed=2))
    pitch = torch.tensor([220.0, 0.0])  # the second sound's pitch is unknown
    first = model.sample(audio, 5, pitch_hz=pitch, generator=torch.Generator().manual_seed(7))
    again = model.sample(audio, 5, pitch_hz=pitch, generator=torch.Generator().manual_seed(7))
    other = model.sample(audio, 5, pitch_hz=pitch, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k][1:5], other[k][1:5]) for k in first)
    assert all(v.shape[0] == 10 for v in first.values())
    point = model(audio, pitch)
    for key in point:
        assert torch.allclose(first[key][0::5], point[key], atol=1e-5), key
    for key in chain.param_keys:
        if not chain.free_param(key).param.is_categorical:
            assert float(first[key].min()) >= 0.0 and float(first[key].max()) <= 1.0
    # An unknown pitch makes pitch-marked dimensions relative to middle C, still a valid preset.
    assert REFERENCE_HZ == pytest.approx(261.6256)


def test_guidance_changes_the_velocity_only_when_asked():
    chain = Chain.from_dict(TWO_OSC_CHOICE)
    model = small_flow(chain)
    audio = chain.render(chain.sample(1, seed=4))
    pitch = torch.tensor([330.0])
    with torch.no_grad():  # the null embedding starts at zero: move it so guidance can matter
        model.null_embedding.add_(1.0)
    plain = model.sample(audio, 3, pitch_hz=pitch, generator=torch.Generator().manual_seed(0), guidance=1.0)
    same = model.sample(audio, 3, pitch_hz=pitch, generator=torch.Generator().manual_seed(0))
    guided = model.sample(audio, 3, pitch_hz=pitch, generator=torch.Generator().manual_seed(0), guidance=3.0)
    assert all(torch.equal(plain[k], same[k]) for k in plain)
    assert any(not torch.allclose(plain[k], guided[k]) for k in plain)


def test_matcher_ranks_flow_candidates_and_refines_the_best():
    chain = Chain.from_dict(TWO_OSC_CHOICE)
    model = small_flow(chain)
    target = chain.render(chain.sample(1, seed=9))[0]
    matcher = Matcher(chain, model, steps=2, restarts=2, candidates=6, seed=1)
    starts, best = matcher._best_candidates(target, 220.0, 5, chain.item_seeds(1, 5))
    scores = matcher.refiner.score(starts, target[None])
    assert scores.shape == (2,) and float(scores[0]) <= float(scores[1])
    assert all(torch.equal(best[k], starts[k][:1]) for k in best)
    result = matcher.match(target, "sound")
    assert set(result.metrics) == {"random", "encoder", "refined"}
    assert result.metrics["refined"]["spectral_loss"] <= result.metrics["encoder"]["spectral_loss"] + 1e-6
    assert matcher.settings()["candidates"] == 6
    # A regression encoder or no model has no candidates to sample.
    assert Matcher(chain, None, steps=0, candidates=6).settings()["candidates"] == 1


@pytest.mark.parametrize("raw, key", [
    ({"model": {"head": "flows"}}, "model.head"),
    ({"model": {"head": "flow", "flow": {"repeat": 4}}}, "model.flow.repeat"),
    ({"model": {"head": "flow", "flow": {"cond_dropout": 1.0}}}, "model.flow.cond_dropout"),
    ({"model": {"head": "flow", "flow": {"time_features": 3}}}, "model.flow.time_features"),
])
def test_bad_flow_settings_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_mod.from_dict(raw)


def test_a_flow_refuses_spectral_and_real_audio_terms(tmp_path):
    from diffmoog.train.trainer import Run
    for sets, key in ((["losses.mrstft.weight=1.0"], "losses.mrstft"), (["data.real_weight=0.5"], "data.real_weight")):
        cfg = config_mod.load("flow", [*sets, "data.train=null", "data.val=null", "data.val_size=2",
                                       f"run.output_dir={tmp_path}", "data.real_train=" + str(tmp_path)])
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            Run(cfg)


def test_posterior_starts_are_refined_as_given_not_retuned():
    """Regression: a single flow candidate went through the jitter path and was retuned to the
    pitch's octaves, which threw away the intervals the posterior chose (LSD 11 -> 15)."""
    from diffmoog.match.refine import Refiner
    chain = Chain.from_dict(TWO_OSC_CHOICE)
    start = chain.sample(1, seed=11)
    target = chain.render(start)[0]
    hz = float(physical(chain, start, "lead.freq_hz")[0]) * 1.3  # a pitch estimate off both oscillators
    result = Refiner(chain).refine(target, start, steps=0, restarts=1, pitch_hz=hz, as_given=True)
    for key in ("lead.freq_hz", "sub.freq_hz"):
        assert torch.allclose(result.params[key].double(), start[key].double(), atol=1e-6), key
    assert result.loss == pytest.approx(0.0, abs=1e-6)
