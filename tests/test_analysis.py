"""diffmoog.analysis: the frames-major STFT, the multi-resolution STFT loss with a hand-written
backward (checked against torch.stft, autograd and auraloss), features and metrics."""
import shutil

import numpy as np
import pytest
import torch

from diffmoog.analysis import stft, stft_native
from diffmoog.analysis.features import LOG_EPS, LogMel, dct_matrix, make_features, mel_filterbank
from diffmoog.analysis.metrics import lsd, mrstft, spectral_convergence
from diffmoog.analysis.spectral_loss import MultiResolutionSTFTLoss as MRSTFTLoss
from diffmoog.analysis.spectral_loss import mrstft_loss, target_spectra

# (fft sizes, hops, window lengths): the defaults, and odd sizes / hops that do not divide the
# FFT size / windows shorter than the FFT (the fold path, no Nyquist bin, a zero-padded window).
RESOLUTIONS = [((2048, 1024, 512), (512, 256, 128), (2048, 1024, 512)),
               ((511, 256, 128), (300, 64, 100), (400, 256, 90))]


@pytest.fixture(params=["native", "pytorch"])
def kernels(request, monkeypatch):
    """Run a test with the C per-bin kernels (stft_native) and with the PyTorch path."""
    if request.param == "native" and not stft_native.usable(torch.zeros(1)):
        pytest.skip("no C compiler: the native STFT-loss kernels cannot be built")
    monkeypatch.setattr(stft_native, "enabled", request.param == "native")
    return request.param


def _signals(n_samples, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, n_samples, generator=gen), 0.3 * torch.randn(3, n_samples, generator=gen)


@pytest.mark.parametrize("n_fft,hop,win_length", [(1024, 256, 1024), (511, 100, 400), (64, 48, 64)])
def test_power_matches_torch_stft(n_fft, hop, win_length, kernels):
    audio, _ = _signals(3001)
    ref = torch.stft(audio, n_fft, hop, win_length, torch.hann_window(win_length), return_complex=True)
    ref = (ref.real.square() + ref.imag.square()).transpose(1, 2)
    assert torch.allclose(stft.power(audio, n_fft, hop, win_length), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (255, 100), (64, 48)])
def test_frames_adjoint_is_the_adjoint_of_framing(n_fft, hop):
    """<frames(x), y> == <x, frames_adjoint(y * window)> for any x, y (the dot-product test)."""
    x, _ = _signals(2001)
    x = x.double()
    win = stft.window(n_fft, n_fft, "cpu", torch.float64)
    framed = stft.frames(x, n_fft, hop, win)
    y = torch.randn(framed.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    lhs = (framed * y).sum()
    rhs = (x * stft.frames_adjoint(y * win, x.shape[-1], hop)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-10)


@pytest.mark.parametrize("res", RESOLUTIONS)
def test_fast_mrstft_matches_autograd_and_auraloss(res, kernels):
    pred, target = _signals(6001)
    pred.requires_grad_(True)
    values, grads = {}, {}
    for impl in ("fast", "autograd", "auraloss"):
        values[impl] = MRSTFTLoss(*res, impl=impl)(pred, target)
        grads[impl], = torch.autograd.grad(values[impl], pred)
    for impl in ("fast", "autograd"):
        assert torch.allclose(values[impl], values["auraloss"], rtol=1e-5)
        assert torch.allclose(grads[impl], grads["auraloss"], rtol=1e-3, atol=1e-8)
    assert grads["fast"].abs().sum() > 0


def test_fast_mrstft_finite_differences():
    """Float64 finite differences on a tiny signal (where the loss is smooth: no exact ties)."""
    pred, target = _signals(96, seed=3)
    targets = target_spectra(target[:1].double(), [(32, 8, 24), (17, 5, 17)])
    x = pred[:1].double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: mrstft_loss(a, targets), (x,), eps=1e-6, atol=1e-6)


def test_fast_mrstft_at_a_perfect_match_and_with_a_differentiable_target(kernels):
    pred, target = _signals(4000)
    same = target.clone().requires_grad_(True)
    value = MRSTFTLoss()(same, target)
    grad, = torch.autograd.grad(value, same)
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-6) and torch.isfinite(grad).all()
    # A target that needs gradients takes the autograd path, so the gradient reaches it too.
    target = target.clone().requires_grad_(True)
    MRSTFTLoss()(pred, target).backward()
    assert target.grad is not None and target.grad.abs().sum() > 0


def test_fast_mrstft_twice_through_a_retained_graph(kernels):
    pred, target = _signals(3000)
    pred.requires_grad_(True)
    loss = MRSTFTLoss()(pred, target)
    first, = torch.autograd.grad(loss, pred, retain_graph=True)
    second, = torch.autograd.grad(loss, pred)
    assert torch.equal(first, second)


@pytest.mark.parametrize("kind", ["logmel", "stft"])
def test_features_match_a_torch_stft_reference(kind, kernels):
    audio, _ = _signals(4000)
    audio[:, 3000:] *= 1e-39  # a denormal tail, as decaying synth sounds have: zeroed by the framing
    features = make_features(kind, 16000, 512, 128, 40)
    spec = torch.stft(audio, 512, 128, 512, torch.hann_window(512), center=True, return_complex=True)
    power = spec.real.square() + spec.imag.square()
    ref = torch.log((torch.einsum("mf,bft->bmt", features.filters, power) if kind == "logmel" else power) + LOG_EPS)
    assert torch.allclose(features(audio), ref, atol=1e-4)


def test_encoder_from_features_is_forward():
    from diffmoog import Chain
    from diffmoog.train.config import FeatureConfig, ModelConfig
    from diffmoog.train.encoders import Encoder
    torch.manual_seed(0)
    model = Encoder.for_chain(Chain.load("REDUCED_SIMPLE_OSC"), FeatureConfig(), ModelConfig(hidden=16, layers=1))
    audio, _ = _signals(4000)
    whole, parts = model(audio), model.from_features(model.features(audio))
    assert whole.keys() == parts.keys() and all(torch.equal(whole[k], parts[k]) for k in whole)


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler")
def test_native_kernels_are_used_on_cpu_float32_only(monkeypatch):
    assert stft_native.usable(torch.zeros(1))
    assert not stft_native.usable(torch.zeros(1, dtype=torch.float64))  # float64: the PyTorch path
    monkeypatch.setenv("DIFFMOOG_NATIVE", "0")
    assert not stft_native.usable(torch.zeros(1))


def test_native_and_pytorch_paths_agree_on_a_nan_and_silence(monkeypatch):
    """A NaN in the prediction must give a NaN loss (the trainer stops on it), and silent frames
    (every bin clamped) a finite one, on both paths."""
    pred, target = _signals(3000)
    pred[:, 1000:2000] = 0.0
    target[:, 1000:2000] = 0.0
    bad = pred.clone()
    bad[1, 100] = float("nan")
    results = []
    for native in (True, False):
        monkeypatch.setattr(stft_native, "enabled", native)
        x = pred.clone().requires_grad_(True)
        value = MRSTFTLoss()(x, target)
        grad, = torch.autograd.grad(value, x)
        results.append((value.detach(), grad))
        assert torch.isnan(MRSTFTLoss()(bad, target))
    (v_native, g_native), (v_torch, g_torch) = results
    assert torch.allclose(v_native, v_torch, rtol=1e-5)
    assert torch.isfinite(g_native).all() and torch.allclose(g_native, g_torch, rtol=1e-3, atol=1e-9)


@pytest.mark.skipif(not stft_native.usable(torch.zeros(1)), reason="no C compiler for the native kernels")
@pytest.mark.parametrize("n_samples,n_fft,hop", [(3001, 512, 128), (257, 512, 100), (100, 63, 7)])
def test_native_frames_equal_pytorch_frames(n_samples, n_fft, hop, monkeypatch):
    audio, _ = _signals(n_samples)
    audio[0, ::3] = 1e-40  # denormals read as 0 on both paths
    win = stft.window(n_fft, n_fft, "cpu")
    native = stft.frames(audio, n_fft, hop, win)
    monkeypatch.setattr(stft_native, "enabled", False)
    assert torch.equal(native, stft.frames(audio, n_fft, hop, win))


def test_features_pass_gradients_to_audio():
    """Framing needs no gradient in training, but a caller differentiating features w.r.t. the
    audio still gets one (the C framing pass is skipped then)."""
    audio, _ = _signals(2000)
    audio.requires_grad_(True)
    LogMel(16000, n_fft=256, hop=64, n_mels=16)(audio).sum().backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all() and audio.grad.abs().sum() > 0


@pytest.mark.skipif(not stft_native.usable(torch.zeros(1)), reason="no C compiler for the native kernels")
@pytest.mark.parametrize("n_samples,n_fft,hop", [(3001, 512, 128), (257, 512, 100), (100, 63, 7)])
def test_native_overlap_add_equals_frames_adjoint(n_samples, n_fft, hop):
    win = stft.window(n_fft, n_fft - 2, "cpu")
    n_frames = 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop
    grad_frames = torch.randn(2, n_frames, n_fft, generator=torch.Generator().manual_seed(4))
    ref = stft.frames_adjoint(grad_frames * win, n_samples, hop)
    assert torch.allclose(stft_native.overlap_add(grad_frames, win, n_samples, hop), ref, atol=1e-5)
    base = torch.ones(2, n_samples)
    assert torch.allclose(stft_native.overlap_add(grad_frames, win, n_samples, hop, out=base), ref + 1, atol=1e-5)


def test_mel_filterbank_and_dct():
    fb = mel_filterbank(16000, 1024, 40)
    assert fb.shape == (40, 513) and (fb >= 0).all()
    peaks = fb.argmax(-1)
    assert (peaks[1:] >= peaks[:-1]).all()  # centres increase with the band index
    d = dct_matrix(32, 32)
    assert torch.allclose(d.T @ d, torch.eye(32), atol=1e-5)


def test_lsd_matches_definition():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4000, generator=gen), torch.randn(2, 4000, generator=gen)
    ref = []
    for x, y in zip(a.numpy(), b.numpy()):
        def power(sig):
            pad = np.pad(sig, 512, mode="reflect")
            frames = np.stack([pad[i:i + 1024] for i in range(0, len(pad) - 1024 + 1, 256)])
            win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)  # periodic Hann
            return np.abs(np.fft.rfft(frames * win, axis=-1)) ** 2
        p_hat, p = power(x), power(y)
        diff = 10 * np.log10(p_hat + 1e-5) - 10 * np.log10(p + 1e-5)
        ref.append(np.sqrt((diff ** 2).sum()) / p.shape[0])
    assert torch.allclose(lsd(a, b), torch.tensor(ref, dtype=torch.float32), rtol=1e-4)
    assert torch.allclose(lsd(a, a), torch.zeros(2))
    assert torch.allclose(spectral_convergence(a, a), torch.zeros(2), atol=1e-6)


def test_fast_mrstft_equals_auraloss():
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 6000, generator=gen, requires_grad=True)
    target = 0.3 * torch.randn(3, 6000, generator=gen)
    ref, fast = MRSTFTLoss(impl="auraloss")(pred, target), MRSTFTLoss(impl="fast")(pred, target)
    assert torch.allclose(ref, fast, rtol=1e-5)
    g_ref, = torch.autograd.grad(ref, pred)
    g_fast, = torch.autograd.grad(fast, pred)
    assert torch.allclose(g_ref, g_fast, rtol=1e-3, atol=1e-8)


def _reference_matching_loss(pred, target, sizes=(2048, 1024, 512, 256, 128), offset=3e-3):
    """The refinement's loss written out with torch.stft: per item, mean over resolutions of
    L1 of magnitudes plus L1 of log(magnitude + offset)."""
    total = 0.0
    for n_fft in sizes:
        mags = [torch.stft(x, n_fft, n_fft // 2, n_fft, torch.hann_window(n_fft), center=True,
                           return_complex=True).abs() for x in (pred, target)]
        total = total + (mags[0] - mags[1]).abs().mean(dim=(-2, -1)) \
            + (torch.log(mags[0] + offset) - torch.log(mags[1] + offset)).abs().mean(dim=(-2, -1))
    return total / len(sizes)


def test_matching_loss_settings_of_the_one_loss(kernels):
    from diffmoog.match.refine import matching_loss
    pred, target = _signals(4000)
    pred[:, 2500:] = 0.0  # exact silence: |S| has a zero gradient there, no NaN
    loss = matching_loss()
    x, y = pred.clone().requires_grad_(True), pred.clone().requires_grad_(True)
    value, ref = loss(x, target[:1]), _reference_matching_loss(y, target[:1])
    assert value.shape == (3,) and torch.allclose(value, ref, rtol=1e-5)
    assert torch.allclose(loss(pred, loss.reference(target[:1])), ref.detach(), rtol=1e-5)
    grad, = torch.autograd.grad(value.sum(), x)
    grad_ref, = torch.autograd.grad(ref.sum(), y)
    assert torch.isfinite(grad).all() and torch.allclose(grad, grad_ref, rtol=1e-4, atol=1e-9)


def test_mrstft_metric_is_per_item_auraloss():
    auraloss = pytest.importorskip("auraloss")
    pred, target = _signals(6000)
    ref = auraloss.freq.MultiResolutionSTFTLoss()
    expected = torch.stack([ref(pred[i:i + 1, None], target[i:i + 1, None]) for i in range(3)])
    assert torch.allclose(mrstft(pred, target), expected, rtol=1e-5)


def test_per_item_loss_of_one_item_is_the_batch_loss():
    pred, target = _signals(3000)
    per_item = MRSTFTLoss(per_item=True)(pred, target)
    batch = [MRSTFTLoss()(pred[i:i + 1], target[i:i + 1]) for i in range(3)]
    assert torch.allclose(per_item, torch.stack(batch), rtol=1e-5)


def test_loss_rejects_unknown_impl_and_auraloss_outside_its_settings():
    with pytest.raises(ValueError, match="impl"):
        MRSTFTLoss(impl="torch")
    with pytest.raises(ValueError, match="auraloss"):
        MRSTFTLoss(per_item=True, impl="auraloss")
    with pytest.raises(ValueError, match="log_offset"):
        MRSTFTLoss(floor=0.0)


def test_frames_pass_gradients_at_exact_silence():
    """Framing with autograd must not zero the gradient where the audio is exactly 0 (as
    flushing denormals would): a silent prediction still learns to make sound."""
    audio = torch.zeros(1, 1000, requires_grad=True)
    win = stft.window(256, 256, "cpu")
    (stft.frames(audio, 256, 64, win) * torch.randn(1, 16, 256)).sum().backward()
    assert (audio.grad != 0).all()
