"""The native-kernel contract, checked from the module registry: every module that declares a
KERNEL renders the same values, float64 gradients and stream state on both paths, in the
smallest chain it can live in. A new kernel gets these tests by declaring itself."""
import ctypes
import re

import pytest
import torch

import diffmoog
from diffmoog import native
from diffmoog.modules import MODULES, Module

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler to build the native kernels")

SR = 8000
KERNEL_MODULES = sorted(name for name, m in MODULES.items() if m.KERNEL is not None)
# bare: only the required ports wired; wired: every control port; automated: wired, and every
# continuous parameter of the module under test is a [batch, frames] automation (per-sample kernel args).
VARIANTS = ("bare", "wired", "automated")


def smallest_chain(type_name: str, variant: str) -> diffmoog.Chain:
    """The module as node "dut", fed by a noise node per required audio input and an LFO per
    control port it has wired."""
    module = MODULES[type_name]
    nodes, node = {}, {"module": type_name}
    inputs = [f"in{i}" for i in range(module.INPUTS[0])]
    for name in inputs:
        nodes[name] = {"module": "noise"}
    if inputs:
        node["inputs"] = inputs
    ports = tuple(module.CONTROL_PORTS) if variant != "bare" else module.REQUIRED_PORTS
    if ports:
        node["control"] = {port: f"lfo_{port}" for port in ports}
        for port in ports:
            nodes[f"lfo_{port}"] = {"module": "lfo", "fixed": {"waveform": "triangle"}}
    nodes["dut"] = node
    return diffmoog.Chain.from_dict({"nodes": nodes, "output": "dut", "sample_rate": SR, "duration": 0.25,
                                     "note_off": 0.15})


def sampled(chain: diffmoog.Chain, variant: str, dtype=torch.float32, batch: int = 3, frames: int = 5) -> dict:
    """Random params; automated ones ramp over `frames` control frames (the render's length:
    per-sample values, which a stream can slice block by block)."""
    params = chain.sample(batch, seed=7)
    if variant == "automated":
        for fp in chain.free_params:
            if fp.key.startswith("dut.") and not fp.param.is_categorical:
                start = params[fp.key][:, None].double()
                params[fp.key] = (start + torch.linspace(-0.3, 0.3, frames, dtype=torch.float64)).clamp(0.02, 0.98)
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in params.items()}


def test_every_module_with_a_native_render_declares_its_kernel():
    for name, module in MODULES.items():
        overrides = module.render_native is not Module.render_native
        assert overrides == (module.KERNEL is not None), name
        assert module.render_torch is not Module.render_torch, name  # the reference path exists
    assert {"oscillator", "adsr", "filter", "noise"} <= set(KERNEL_MODULES)


def test_registries_are_derived_from_the_declarations():
    kernels = native.kernels()
    assert {MODULES[n].KERNEL.name for n in KERNEL_MODULES} == set(kernels)
    # Every kernel header in the folder belongs to a declared kernel (common.h holds helpers).
    folder = {p.name for p in native._HERE.glob("*.h")} - {"common.h"}
    assert folder == {k.header for k in kernels.values()}
    header = native.generated_header()
    for k in kernels.values():
        assert f'#include "{k.header}"' in header
        for direction, params in k.signatures.items():
            for dtype in (torch.float32, torch.float64):
                fn = k.function(direction, dtype)
                assert fn.restype is None and len(fn.argtypes) == 2 + len(params)
            # The C definition uses the generated argument list (its prototype makes a
            # differing list a compile error).
            macro = f"{k.c_name(direction).upper()}_ARGS"
            source = (native._HERE / k.header).read_text()
            assert re.search(rf"void SUF\({k.c_name(direction)}\)\({macro}\)", source), (k.name, direction)
    for name, value in native.c_constants().items():
        assert f"#define {name} {native._c_literal(value)}\n" in header


def test_constants_reach_c_from_python_only():
    """The C sources name the shared constants; their values live only in Python."""
    sources = "".join(p.read_text() for p in native._HERE.glob("*.h"))
    for literal in ("(REAL)1e-3", "(REAL)8 * C[", "(REAL)0.05", "(REAL)9", "0.45", "(REAL)10 "):
        assert literal not in sources, literal
    assert "#define BQ_ARGS" not in sources and "#define ADSR_ARGS" not in sources


def test_kernel_call_checks_argument_names():
    k = native.kernels()["noise"]
    with pytest.raises(TypeError, match="missing"):
        k.forward_call(torch.float32, 1, 4, {"T": 4})
    assert k.argtypes("forward")[:3] == [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]


def test_generated_header_is_part_of_the_cache_key(tmp_path, monkeypatch):
    """Editing a constant (or a signature) in Python changes the library's cache name."""
    built = []
    monkeypatch.setenv("DIFFMOOG_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_build", lambda target, *args: built.append(target.name))
    monkeypatch.setattr(native, "_libraries", {})
    source = native._HERE / "kernels.c"
    for text in ("#define A 1\n", "#define A 2\n"):
        native._libraries.clear()
        with pytest.warns(UserWarning):  # the stub builds nothing, so loading fails
            native.load("kernels", source, generated={"generated.h": text})
    assert len(set(built)) == 2


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("type_name", KERNEL_MODULES)
def test_kernel_values_equal_reference(type_name, variant):
    chain = smallest_chain(type_name, variant)
    params = sampled(chain, variant)
    fast = chain.render(params)
    with native.disabled():
        slow = chain.render(params)
    assert fast.shape == slow.shape == (3, int(0.25 * SR))
    assert slow.abs().max() > 0
    assert torch.allclose(fast, slow, atol=1e-4, rtol=0), (fast - slow).abs().max()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("type_name", KERNEL_MODULES)
def test_kernel_float64_gradients_equal_reference(type_name, variant):
    chain = smallest_chain(type_name, variant)
    params = {k: (v.requires_grad_() if v.is_floating_point() else v)
              for k, v in sampled(chain, variant, torch.float64, batch=2).items()}
    keys = [k for k, v in params.items() if v.requires_grad]
    weights = torch.randn(2, int(0.25 * SR), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = []
    for use_native in (True, False):
        with (torch.enable_grad() if use_native else native.disabled()):
            audio = chain.render(params)
        grads.append(torch.autograd.grad((audio * weights).sum(), [params[k] for k in keys], allow_unused=True))
    assert any(g is not None and g.abs().max() > 0 for g in grads[1] if g is not None)
    for key, a, b in zip(keys, *grads):
        if a is None or b is None:
            assert (a if a is not None else b) is None or (a if a is not None else b).abs().max() == 0, key
            continue
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8 * (1 + b.abs().max())), (key, (a - b).abs().max())


def _stream(chain, params, block: int, switch_at: int | None = None, use_native: bool = True):
    """Blocks of the render and the final stream state; from block `switch_at` on, the
    PyTorch path (or the native one from the start when `use_native`)."""
    batch = params["seed"].shape[0]
    total = int(round(chain.spec.duration * chain.sample_rate))
    state, blocks = {}, []
    for i, start in enumerate(range(0, total, block)):
        torch_path = not use_native or (switch_at is not None and i >= switch_at)
        n = min(block, total - start)
        ctx = chain.context(batch, dtype=torch.float64, seeds=params["seed"], start=start, n_samples=n, state=state)
        part = {k: v[:, start:start + n] if v.dim() == 2 and v.shape[-1] == total else v for k, v in params.items()}
        with torch.no_grad(), (native.disabled() if torch_path else torch.enable_grad()):
            blocks.append(chain.render(part, context=ctx))
    return torch.cat(blocks, -1), state


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("type_name", KERNEL_MODULES)
def test_kernel_stream_state_equals_reference(type_name, variant):
    chain = smallest_chain(type_name, variant)
    params = sampled(chain, variant, torch.float64, batch=2, frames=int(0.25 * SR))
    offline = chain.render(params)
    fast, fast_state = _stream(chain, params, 256)
    slow, slow_state = _stream(chain, params, 256, use_native=False)
    # The same keys, layouts and values on both paths (a node that carries nothing may or
    # may not have an empty dict)...
    fast_state, slow_state = ({n: s for n, s in st.items() if s} for st in (fast_state, slow_state))
    assert fast_state.keys() == slow_state.keys()
    for node in fast_state:
        assert fast_state[node].keys() == slow_state[node].keys(), node
        for key, value in fast_state[node].items():
            other = slow_state[node][key]
            assert value.shape == other.shape and value.dtype == other.dtype, (node, key)
            assert torch.allclose(value, other, rtol=1e-9, atol=1e-9), (node, key)
    # ...so a stream can change path between blocks.
    switched, _ = _stream(chain, params, 256, switch_at=3)
    back, _ = _stream(chain, params, 256, switch_at=None, use_native=True)
    assert torch.allclose(switched, back, rtol=0, atol=1e-9), (switched - back).abs().max()
    assert torch.allclose(fast, slow, rtol=0, atol=1e-9)
    assert torch.allclose(fast, offline, rtol=0, atol=1e-9), (fast - offline).abs().max()


def test_reversed_switch_torch_then_native():
    chain = smallest_chain("filter", "wired")
    params = sampled(chain, "wired", torch.float64, batch=2)
    slow, _ = _stream(chain, params, 256, use_native=False)
    total = int(round(chain.spec.duration * chain.sample_rate))
    state, blocks = {}, []
    for i, start in enumerate(range(0, total, 256)):
        ctx = chain.context(2, dtype=torch.float64, seeds=params["seed"], start=start,
                            n_samples=min(256, total - start), state=state)
        with torch.no_grad(), (native.disabled() if i < 3 else torch.enable_grad()):  # PyTorch, then native
            blocks.append(chain.render(params, context=ctx))
    assert torch.allclose(torch.cat(blocks, -1), slow, rtol=0, atol=1e-9)
