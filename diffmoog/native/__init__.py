"""Native CPU kernels: fused per-sample DSP, compiled with the system C compiler on first use.

Why: in eager PyTorch each pointwise op is a pass over `[batch, samples]` memory, and an
oscillator with PolyBLEP or an ADSR costs dozens of them. These kernels do a module's
whole per-sample computation (and its backward) in one pass. They are plain C called
through ctypes, which releases the GIL, so a batch is split across threads.

The library is built once per source version and CPU into a cache folder
(`$DIFFMOOG_CACHE`, default `~/.cache/diffmoog`), atomically, so parallel processes
are safe. Without a C compiler, on CUDA tensors, under torch.compile, or with
`DIFFMOOG_NATIVE=0`, the modules use their pure-PyTorch path instead (same maths).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

_HERE = Path(__file__).parent
_HEADERS = ("common.h", "oscillator.h", "adsr.h", "biquad.h", "noise.h")
# No -ffast-math: its rewrites change values (e.g. phase increments), so the kernels would
# disagree with the PyTorch path. No FMA contraction either, for the same reason.
# sin/cos are not builtins, so sin(x) and cos(x) are not merged into a scalar sincos call
# (common.h re-declares them as const vector functions instead).
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffinite-math-only", "-fno-trapping-math",
          "-fno-signed-zeros", "-ffp-contract=off", "-fno-builtin-sin", "-fno-builtin-sinf",
          "-fno-builtin-cos", "-fno-builtin-cosf", "-fPIC", "-shared", "-std=gnu11"]
_LIBS = ["-lmvec", "-lm"]
_KERNELS = ("osc_forward", "osc_backward", "adsr_forward", "adsr_backward",
            "biquad_forward", "biquad_backward", "noise_forward", "noise_backward")
_MIN_PARALLEL_SAMPLES = 1 << 16  # below this, thread hand-off costs more than it saves

_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL | None] = {}  # by name; None: could not be built
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (owner pid, workers, pool)
_enabled = True
_synth: tuple[ctypes.CDLL | None] | None = None


def _cpu_signature() -> str:
    """-march=native code is only valid on this CPU model: part of the library's cache key."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = ""
    return platform.machine() + platform.processor() + flags


def _build(target: Path, compiler: str, source: Path, flags: list[str], scalar_define: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        command = [compiler, *flags, str(source), "-o", tmp]
        try:
            subprocess.run(command + _LIBS, check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError:  # no libmvec (not glibc/x86-64): scalar maths
            subprocess.run(command + [f"-D{scalar_define}", "-lm"], check=True, capture_output=True, text=True)
        os.replace(tmp, target)  # atomic: a concurrent process sees the old file or the whole new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def keep_freed_buffers() -> None:
    """Ask glibc malloc to keep freed large blocks instead of returning them to the OS.

    A render allocates and frees several `[batch, samples]` buffers (16 MB at batch 64 x 4 s).
    glibc trims the heap top / unmaps such blocks on free, so the next render page-faults
    every page back in (and the kernel zeroes it): about a third of a CPU render's time.
    Keeping up to 1 GB of freed memory costs no extra peak memory. Respects MALLOC_*_ env
    settings; a no-op without glibc.
    """
    if any(k.startswith("MALLOC_") for k in os.environ) or platform.system() != "Linux":
        return
    try:
        libc = ctypes.CDLL(None)
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 256 << 20)  # also stops glibc's dynamic threshold
        libc.mallopt(m_trim_threshold, 1 << 30)
        libc.mallopt(m_top_pad, 64 << 20)
    except (OSError, AttributeError):
        pass


def load(name: str, source: Path, headers: tuple[Path, ...] = (), flags: list[str] | None = None,
         scalar_define: str = "DIFFMOOG_SCALAR_MATH") -> ctypes.CDLL | None:
    """Build (once per source version, flags and CPU) and load the C library `source`.

    Returns None, with one warning, when it cannot be built (no compiler, or it fails).
    `scalar_define` is defined for the retry without glibc's vector maths library.
    """
    if name in _libraries:
        return _libraries[name]
    with _lock:
        if name in _libraries:
            return _libraries[name]
        lib = None
        flags = _FLAGS if flags is None else flags
        compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
        try:
            if os.environ.get("DIFFMOOG_NATIVE", "1") == "0":
                return None
            if compiler is None:
                raise OSError("no C compiler (gcc/cc) on PATH")
            digest = hashlib.sha256()
            for path in (source, *headers):
                digest.update(path.read_bytes())
            digest.update(" ".join(flags + [compiler, _cpu_signature()]).encode())
            cache = Path(os.environ.get("DIFFMOOG_CACHE", Path.home() / ".cache" / "diffmoog"))
            target = cache / "native" / f"{name}-{digest.hexdigest()[:16]}.so"
            if not target.is_file():
                _build(target, compiler, source, flags, scalar_define)
            lib = ctypes.CDLL(str(target))
            keep_freed_buffers()
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            warnings.warn(f"diffmoog: native {name} kernels unavailable, using PyTorch ops ({detail.strip()[:300]})")
        finally:
            _libraries[name] = lib
        return lib


def library() -> ctypes.CDLL | None:
    """The synth kernel library, built on first use; None if it cannot be built."""
    global _synth
    if _synth is None:
        lib = load("kernels", _HERE / "kernels.c", tuple(_HERE / h for h in _HEADERS))
        if lib is not None:
            for name in _KERNELS:
                for suffix in ("_f32", "_f64"):
                    getattr(lib, name + suffix).restype = None
        _synth = (lib,)  # cached: called per module per render (streaming: per block)
    return _synth[0]


def usable(*tensors: torch.Tensor | None) -> bool:
    """True when the native kernels can run on these tensors (CPU float32/64, eager mode)."""
    if not _enabled or torch.compiler.is_compiling():
        return False
    for t in tensors:
        if t is not None and (t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64)):
            return False
    return library() is not None


@contextlib.contextmanager
def disabled():
    """Use the pure-PyTorch module paths inside this block (to compare, or to benchmark them)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


class _NoGradContext:
    """Stands in for autograd's ctx when nothing needs a gradient (saves nothing)."""

    def save_for_backward(self, *tensors):
        pass


def apply(function: type[torch.autograd.Function], *args):
    """`function.apply(*args)`, minus autograd's bookkeeping when no input needs a gradient
    (streaming and dataset renders: it was a fifth of a 512-sample block's time)."""
    if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return function.apply(*args)
    return function.forward(_NoGradContext(), *args)


def kernel(name: str, dtype: torch.dtype):
    return getattr(library(), name + ("_f32" if dtype == torch.float32 else "_f64"))


def ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def run(fn, batch: int, samples: int, *args) -> None:
    """Call `fn(row0, row1, *args)` over the batch's rows, split across torch's thread count."""
    global _pool
    threads = min(torch.get_num_threads(), batch)
    if threads <= 1 or batch * samples < _MIN_PARALLEL_SAMPLES:
        fn(ctypes.c_int64(0), ctypes.c_int64(batch), *args)
        return
    # A forked child (e.g. a DataLoader worker) inherits the pool object but not its threads.
    if _pool is None or _pool[0] != os.getpid() or _pool[1] < threads - 1:
        _pool = (os.getpid(), threads - 1,
                 ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="diffmoog-native"))
    edges = [batch * i // threads for i in range(threads + 1)]
    futures = [_pool[2].submit(fn, ctypes.c_int64(edges[i]), ctypes.c_int64(edges[i + 1]), *args)
               for i in range(1, threads)]
    fn(ctypes.c_int64(edges[0]), ctypes.c_int64(edges[1]), *args)
    for future in futures:
        future.result()


def rows(t: torch.Tensor, batch: int, samples: int, dtype: torch.dtype) -> torch.Tensor:
    """A parameter as a contiguous `[batch, 1]` or `[batch, samples]` tensor."""
    t = t.to(dtype)
    if t.dim() == 1:
        t = t[:, None]
    return t.expand(batch, 1 if t.shape[-1] == 1 else samples).contiguous()


def per_sample(t: torch.Tensor | None) -> ctypes.c_int:
    """The kernels' flag for a prepared parameter: 1 for `[batch, samples]`, 0 for `[batch, 1]`."""
    return ctypes.c_int(int(t is not None and t.shape[-1] > 1))
