"""Native kernels: they match the PyTorch module paths (values and gradients) and gradcheck."""
import pytest
import torch

import diffmoog
from diffmoog import native, rng
from diffmoog.native.adsr import adsr
from diffmoog.native.biquad import biquad
from diffmoog.native.noise import noise
from diffmoog.native.oscillator import oscillator

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler to build the native kernels")

CHAINS = ["REDUCED_SIMPLE_OSC", "REDUCED", "MODULAR", "LFO_SAW", "FM_SAW", "DRUM", "DRUM_METAL", "FILTER_ONLY",
          "MORPH_OSC", "FM_DX7"]


def test_chain_list_covers_every_module_with_a_kernel():
    """CHAINS must exercise every module that declares a KERNEL (see also test_kernel_contract.py)."""
    from diffmoog.modules import MODULES

    used = {type(m).type_name for name in CHAINS for m in diffmoog.Chain.load(name).modules.values()}
    assert {n for n, m in MODULES.items() if m.KERNEL is not None} <= used


def render_both(chain, params, **kwargs):
    fast = chain.render(params, **kwargs)
    with native.disabled():
        slow = chain.render(params, **kwargs)
    return fast, slow


@pytest.mark.parametrize("name", CHAINS)
def test_chain_native_equals_torch_path(name):
    chain = diffmoog.Chain.load(name)
    params = chain.sample(6, seed=11)
    fast, slow = render_both(chain, params, duration=0.4, note_off=0.25)
    assert fast.shape == slow.shape
    assert torch.allclose(fast, slow, atol=1e-4, rtol=0), (fast - slow).abs().max()


@pytest.mark.parametrize("name", CHAINS)
def test_chain_native_gradients_equal_torch_path(name):
    chain = diffmoog.Chain.load(name)
    params = {k: (v.double().requires_grad_() if v.is_floating_point() else v)
              for k, v in chain.sample(3, seed=5).items()}
    weights = torch.randn(3, int(0.3 * 16000), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = []
    for use_native in (True, False):
        with (native.disabled() if not use_native else torch.enable_grad()):
            audio = chain.render(params, duration=0.3, note_off=0.2)
        keys = [k for k, v in params.items() if v.requires_grad]
        grads.append(dict(zip(keys, torch.autograd.grad((audio * weights).sum(), [params[k] for k in keys],
                                                        allow_unused=True))))
    for key in grads[0]:
        a, b = grads[0][key], grads[1][key]
        if a is None or b is None:
            assert a is None and b is None or (a if a is not None else b).abs().max() == 0, key
            continue
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8 * (1 + b.abs().max())), (key, a, b)


def _dense(batch, samples, low, high, seed):
    g = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand(batch, samples, generator=g, dtype=torch.float64)).requires_grad_()


@pytest.mark.parametrize("shape", [0, 1, 2, 3])
@pytest.mark.parametrize("band_limited", [True, False])
def test_oscillator_gradcheck(shape, band_limited):
    # Per-sample pitch (FM) crossing the additive threshold (sr/18) and back.
    batch, samples = 2, 48
    freq = _dense(batch, 1, 300.0, 900.0, 1)
    amp = _dense(batch, samples, 0.2, 1.0, 2)
    control = _dense(batch, samples, -1.0, 1.0, 3)
    mod = _dense(batch, 1, 0.1, 1.2, 4)
    ids = torch.full((batch,), shape, dtype=torch.int32)

    def fn(freq, amp, control, mod):
        return oscillator(freq, amp, ids, band_limited, 16000, 7, samples, control, mod)[0]

    assert torch.autograd.gradcheck(fn, (freq, amp, control, mod), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("shape", [1, 2, 3])
def test_constant_pitch_oscillator_gradcheck(shape):
    ids = torch.full((3,), shape, dtype=torch.int32)
    freq = torch.tensor([[220.0], [1000.0], [1900.0]], dtype=torch.float64, requires_grad=True)
    amp = _dense(3, 1, 0.2, 1.0, 5)
    assert torch.autograd.gradcheck(lambda f, a: oscillator(f, a, ids, True, 16000, 3, 40)[0], (freq, amp),
                                    atol=1e-5, rtol=1e-4)


def test_adsr_gradcheck():
    # One second at a low rate: every segment spans a few samples. Times avoid landing
    # exactly on a sample, where the envelope has a kink (finite differences are one-sided).
    sr, samples = 400, 400
    a = torch.tensor([[0.0513], [0.2031]], dtype=torch.float64, requires_grad=True)
    d = torch.tensor([[0.1071], [0.3017]], dtype=torch.float64, requires_grad=True)
    s = torch.tensor([[0.6], [0.3]], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([[0.2033], [0.1019]], dtype=torch.float64, requires_grad=True)
    c = _dense(2, samples, 0.1, 0.9, 6)  # a per-sample parameter too
    fn = lambda *p: adsr(*p, sr, 0.5013, 0, samples)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, d, s, r, c), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("mode", ["constant", "per_sample_q", "control"])
def test_biquad_gradcheck(mode):
    with_control = mode == "control"
    batch, samples = 5, 40  # 5 rows: constant coefficients run 4 rows at a time, plus a remainder
    x = _dense(batch, samples, -1.0, 1.0, 7)
    cutoff = _dense(batch, 1, 200.0, 2000.0, 8)
    q = _dense(batch, samples if mode == "per_sample_q" else 1, 0.6, 3.0, 9)
    weights = torch.softmax(_dense(batch, 3, -1.0, 1.0, 10), -1).detach().requires_grad_()
    control = _dense(batch, samples, 0.0, 1.0, 11) if with_control else None
    mod = _dense(batch, 1, 0.5, 2.0, 12) if with_control else None
    inputs = (x, cutoff, q, weights) + ((control, mod) if with_control else ())
    fn = lambda x, f, q, w, *cm: biquad(x, f, q, w, 8000, *cm)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs, atol=1e-6, rtol=1e-4)


def test_biquad_block_state_matches_one_pass():
    x = torch.randn(2, 1000, dtype=torch.float64)
    cutoff, q = torch.tensor([[300.0], [3000.0]], dtype=torch.float64), torch.full((2, 1), 2.0, dtype=torch.float64)
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    whole = biquad(x, cutoff, q, weights, 16000)
    state: dict = {}
    parts = [biquad(x[:, i:i + 300], cutoff, q, weights, 16000, state=state) for i in range(0, 1000, 300)]
    assert torch.equal(torch.cat(parts, -1), whole)


def test_forked_child_gets_its_own_thread_pool():
    """A forked process (a DataLoader worker) must not queue work on the parent's dead pool."""
    import multiprocessing

    assert _rows_covered() == list(range(64))  # creates the pool in this process
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_rows_covered).get(timeout=60) == list(range(64))


def _rows_covered() -> list[int]:
    """Rows that native.run hands out over two threads (a Python callable stands in for a kernel)."""
    torch.set_num_threads(2)
    seen = []
    native.run(lambda row0, row1: seen.extend(range(row0.value, row1.value)), 64, 1 << 16)
    return sorted(seen)


def test_noise_is_the_rng_hash_bit_for_bit():
    seeds = torch.tensor([0, 7, 2**31 + 5, 3**20], dtype=torch.int64)
    amp = torch.rand(4, 1)
    expected = amp * (2.0 * rng.uniform(seeds[:, None], torch.arange(300, 1300)[None, :]) - 1.0)
    assert torch.equal(noise(seeds, amp, 300, 1000), expected)


@pytest.mark.parametrize("per_sample", [False, True])
def test_noise_gradcheck(per_sample):
    seeds = torch.tensor([3, 4], dtype=torch.int64)
    amp = _dense(2, 30 if per_sample else 1, 0.1, 1.0, 13)
    assert torch.autograd.gradcheck(lambda a: noise(seeds, a, 11, 30), (amp,))


@pytest.mark.parametrize("name", ["MORPH_OSC", "REDUCED"])
def test_automated_pitch_streams_like_offline(name):
    """A pitch automation (time-varying phase in the kernels) continues across stream blocks."""
    from diffmoog.stream import render_streamed

    chain = diffmoog.Chain.load(name)
    params = chain.sample(2, seed=6)
    key = next(k for k in params if k.endswith("freq_hz"))
    params[key] = torch.linspace(0.1, 0.8, 7).expand(2, 7).clone()
    offline = chain.render(params, duration=0.3)
    streamed = render_streamed(chain, params, 512, duration=0.3)
    # Not bit-exact on either path: the stream upsamples automation in float64 and the offline
    # render in float32, and the phase integrates that rounding (~1e-5 after 0.3 s).
    assert (streamed - offline).abs().max() <= 1e-4


@pytest.mark.parametrize("shape", [0, 1, 2])
@pytest.mark.parametrize("constant_pitch", [True, False])
def test_phase_modulation_gradcheck(shape, constant_pitch):
    """pm_oscillator's path: a phase offset whose steps also widen the BLEP (and may cross the
    additive threshold), after a streamed block (offset_before) or at the start."""
    batch, samples = 2, 48
    freq = _dense(batch, 1 if constant_pitch else samples, 300.0, 900.0, 14)
    amp = _dense(batch, 1, 0.2, 1.0, 15)
    offset = _dense(batch, samples, -0.02, 0.02, 16)
    ids = torch.full((batch,), shape, dtype=torch.int32)
    for before in (None, torch.tensor([[0.01], [-0.01]], dtype=torch.float64)):
        def fn(freq, amp, offset):
            return oscillator(freq, amp, ids, True, 16000, 5, samples, phase_offset=offset, offset_before=before)[0]

        assert torch.autograd.gradcheck(fn, (freq, amp, offset), atol=1e-6, rtol=1e-4)
