"""Native CPU kernels: fused per-sample DSP, compiled with the system C compiler on first use.

Why: in eager PyTorch each pointwise op is a pass over `[batch, samples]` memory, and an
oscillator with PolyBLEP or an ADSR costs dozens of them. These kernels do a module's
whole per-sample computation (and its backward) in one pass. They are plain C called
through ctypes, which releases the GIL, so a batch is split across threads.

The library is built once per source version and CPU into a cache folder
(`$DIFFMOOG_CACHE`, default `~/.cache/diffmoog`), atomically, so parallel processes
are safe. Without a C compiler, on CUDA tensors, under torch.compile, or with
`DIFFMOOG_NATIVE=0`, the modules use their pure-PyTorch path instead (same maths).

The kernel contract: a module with a kernel declares it once, as its class's `KERNEL`
(a `Kernel`: name, header, forward and backward argument lists in C syntax), and the
constants its C code shares with the PyTorch reference as `C_CONSTANTS`. From the module
registry this file derives everything else: the headers compiled (and hashed: every .h in
this folder is), the exported functions and their ctypes argtypes, and a generated header
(`generated.h`) with the constants, each kernel's argument list as a macro
(`<NAME>_FORWARD_ARGS`, `<NAME>_BACKWARD_ARGS`) and its prototype, so a kernel whose C
definition disagrees with its declaration does not compile. `Module.render` dispatches:
`render_native` when `usable_for` its tensors, else the reference `render_torch`.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path

import torch

_HERE = Path(__file__).parent
# No -ffast-math: its rewrites change values (e.g. phase increments), so the kernels would
# disagree with the PyTorch path. No FMA contraction either, for the same reason.
# sin/cos are not builtins, so sin(x) and cos(x) are not merged into a scalar sincos call
# (common.h re-declares them as const vector functions instead).
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-ffinite-math-only", "-fno-trapping-math",
          "-fno-signed-zeros", "-ffp-contract=off", "-fno-builtin-sin", "-fno-builtin-sinf",
          "-fno-builtin-cos", "-fno-builtin-cosf", "-fPIC", "-shared", "-std=gnu11"]
_LIBS = ["-lmvec", "-lm"]
_REALS = (torch.float32, torch.float64)
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


def _build(target: Path, compiler: str, source: Path, flags: list[str], scalar_define: str,
           generated: dict[str, str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as include:
            for name, text in generated.items():
                Path(include, name).write_text(text)
            # Generated headers first, then the source's folder (a generated header may include its files).
            paths = [f"-I{include}", f"-I{source.parent}"] if generated else []
            command = [compiler, *flags, *paths, str(source), "-o", tmp]
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
         scalar_define: str = "DIFFMOOG_SCALAR_MATH", generated: dict[str, str] | None = None
         ) -> ctypes.CDLL | None:
    """Build (once per source version, flags and CPU) and load the C library `source`.

    Returns None, with one warning, when it cannot be built (no compiler, or it fails).
    `scalar_define` is defined for the retry without glibc's vector maths library.
    `headers`: files the source includes (part of the cache key). `generated`: header
    file name -> text, written next to the build and included before the source's folder
    (also part of the cache key).
    """
    generated = generated or {}
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
            for file_name, text in sorted(generated.items()):
                digest.update(file_name.encode() + b"\0" + text.encode())
            digest.update(" ".join(flags + [compiler, _cpu_signature()]).encode())
            cache = Path(os.environ.get("DIFFMOOG_CACHE", Path.home() / ".cache" / "diffmoog"))
            target = cache / "native" / f"{name}-{digest.hexdigest()[:16]}.so"
            if not target.is_file():
                _build(target, compiler, source, flags, scalar_define, generated)
            lib = ctypes.CDLL(str(target))
            keep_freed_buffers()
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            warnings.warn(f"diffmoog: native {name} kernels unavailable, using PyTorch ops ({detail.strip()[:300]})")
        finally:
            _libraries[name] = lib
        return lib


class Kernel:
    """One native kernel's declaration: C functions `<name>_forward` and `<name>_backward`
    (each as `_f32` and `_f64`), defined in `header` (in this folder).

    `forward`/`backward` list the C parameters after `int64_t row0, int64_t row1` (the
    rows that `run` hands each thread), in order, in C syntax: "int64_t T", "int amp_ps",
    "double sample_rate", "const REAL *x", "REAL *out" (REAL: the float type of the
    instantiation). The generated header turns them into the C argument lists and
    prototypes; ctypes argtypes come from the same lists; `forward_call`/`backward_call`
    take the arguments by name (a dict). `constants`: C name -> value, for the generated header.
    """

    _CTYPES = {"int64_t": ctypes.c_int64, "int": ctypes.c_int, "double": ctypes.c_double}

    def __init__(self, name: str, header: str, forward: tuple[str, ...], backward: tuple[str, ...],
                 constants: dict[str, int | float] | None = None):
        self.name, self.header = name, header
        self.constants = dict(constants or {})  # part of the kernel's interface (e.g. waveform ids)
        self.signatures = {"forward": tuple(forward), "backward": tuple(backward)}
        self.arg_names = {direction: tuple(_declared_name(p) for p in params)
                          for direction, params in self.signatures.items()}
        # Declared order from a dict of arguments by name, in one C call per kernel call.
        self._forward_order = itemgetter(*self.arg_names["forward"])
        self._backward_order = itemgetter(*self.arg_names["backward"])
        self._forward: dict = {}  # dtype -> ctypes function, filled by bind()
        self._backward: dict = {}

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, {self.header!r})"

    def c_name(self, direction: str) -> str:
        return f"{self.name}_{direction}"

    def argtypes(self, direction: str) -> list:
        """ctypes argument types: row0, row1, then the declared parameters."""
        types = [ctypes.c_int64, ctypes.c_int64]
        for param in self.signatures[direction]:
            declared = param.rsplit(None, 1)[0] if "*" not in param else "*"
            types.append(ctypes.c_void_p if declared == "*" else self._CTYPES[declared])
        return types

    def bind(self, lib: ctypes.CDLL) -> None:
        """Look up this kernel's functions in `lib` and give them argtypes and restype."""
        for direction, functions in (("forward", self._forward), ("backward", self._backward)):
            for dtype, suffix in ((torch.float32, "_f32"), (torch.float64, "_f64")):
                fn = getattr(lib, self.c_name(direction) + suffix)
                fn.argtypes, fn.restype = self.argtypes(direction), None
                functions[dtype] = fn

    def function(self, direction: str, dtype: torch.dtype):
        """The bound ctypes function (building the library if needed)."""
        functions = self._forward if direction == "forward" else self._backward
        if not functions:
            self.bind(library())
        return functions[dtype]

    def c_declarations(self) -> tuple[str, str]:
        """The argument-list macros and per-REAL prototypes, for the generated header."""
        macros, prototypes = [], []
        for direction, params in self.signatures.items():
            macro = f"{self.c_name(direction).upper()}_ARGS"
            macros.append(f"#define {macro} int64_t row0, int64_t row1, {', '.join(params)}")
            prototypes.append(f"void SUF({self.c_name(direction)})({macro});")
        return "\n".join(macros), "\n".join(prototypes)

    # Called per render (streaming: per block), so kept to a few dict operations.
    def forward_call(self, dtype: torch.dtype, batch: int, samples: int, args: dict) -> None:
        """Run the forward kernel over `batch` rows. `args`: every declared parameter by name;
        tensors as `address(t)`, flags and sizes as ints, rates as floats."""
        if len(args) != len(self.arg_names["forward"]):
            self._mismatch("forward", args)
        fn = self._forward.get(dtype) or self.function("forward", dtype)
        run(fn, batch, samples, *self._forward_order(args))

    def backward_call(self, dtype: torch.dtype, batch: int, samples: int, args: dict) -> None:
        """As forward_call, for the backward kernel."""
        if len(args) != len(self.arg_names["backward"]):
            self._mismatch("backward", args)
        fn = self._backward.get(dtype) or self.function("backward", dtype)
        run(fn, batch, samples, *self._backward_order(args))

    def _mismatch(self, direction: str, args: dict):
        extra = sorted(set(args) - set(self.arg_names[direction]))
        missing = sorted(set(self.arg_names[direction]) - set(args))
        raise TypeError(f"{self.c_name(direction)}: unexpected {extra}, missing {missing}")


def _declared_name(param: str) -> str:
    name = param.replace("*", " ").split()[-1]
    if not name.isidentifier():
        raise ValueError(f"kernel parameter {param!r}: expected a C declaration such as 'const REAL *x'")
    return name


def kernels() -> dict[str, Kernel]:
    """The kernels, by name, that the registered modules declare (diffmoog.modules.MODULES)."""
    from diffmoog.modules import MODULES  # modules import this package: look them up when asked

    out: dict[str, Kernel] = {}
    for module in MODULES.values():
        k = module.KERNEL
        if k is not None and out.setdefault(k.name, k) is not k:
            raise ValueError(f"two kernels named {k.name!r}")
    return out


def c_constants() -> dict[str, float | int]:
    """Constants the kernels share with Python, by C name: the kernels' own (`Kernel.constants`)
    and those of the modules' PyTorch reference paths (`Module.C_CONSTANTS`)."""
    from diffmoog.modules import MODULES

    out: dict[str, float | int] = {}
    declared = [k.constants for k in kernels().values()]
    declared += [m.C_CONSTANTS for m in MODULES.values() if m.KERNEL is not None]
    for constants in declared:
        for name, value in constants.items():
            if out.setdefault(name, value) != value:
                raise ValueError(f"C constant {name} declared as {out[name]!r} and {value!r}")
    return out


def _c_literal(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"C constants are ints or finite floats, got {value!r}")
    # A float's repr is its shortest round-trip form (always with "." or "e"): C reads the same double.
    return str(value) if isinstance(value, int) else repr(float(value))


def generated_header() -> str:
    """generated.h: constants, argument lists, prototypes and the kernel headers, from the
    Python declarations. kernels.c includes it once per REAL type."""
    declared = kernels()
    once = ["/* Generated by diffmoog/native/__init__.py from the modules' KERNEL and C_CONSTANTS",
            "   declarations: edit those, not this file. Included once per REAL type (kernels.c). */",
            "#ifndef DIFFMOOG_GENERATED_ONCE", "#define DIFFMOOG_GENERATED_ONCE"]
    once += [f"#define {name} {_c_literal(value)}" for name, value in sorted(c_constants().items())]
    per_real = []
    for k in declared.values():
        macros, prototypes = k.c_declarations()
        once.append(macros)
        per_real += [prototypes, f'#include "{k.header}"']
    return "\n".join(once + ["#endif"] + per_real) + "\n"


def library() -> ctypes.CDLL | None:
    """The synth kernel library, built on first use; None if it cannot be built."""
    global _synth
    if _synth is None:
        declared = kernels()
        lib = load("kernels", _HERE / "kernels.c", tuple(sorted(_HERE.glob("*.h"))),
                   generated={"generated.h": generated_header()})
        if lib is not None:
            for k in declared.values():
                k.bind(lib)
        _synth = (lib,)  # cached: called per module per render (streaming: per block)
    return _synth[0]


def usable(*tensors: torch.Tensor | None) -> bool:
    """True when the native kernels can run on these tensors (CPU float32/64, eager mode)."""
    if not _enabled or torch.compiler.is_compiling():
        return False
    for t in tensors:
        if t is not None and not (t.is_cpu and t.dtype in _REALS):
            return False
    return library() is not None


def usable_for(inputs, params: dict, controls: dict) -> bool:
    """The one rule for a module's native path: native enabled, eager mode, the library
    built, and every input, parameter and control tensor on the CPU in float32/64."""
    if not _enabled or torch.compiler.is_compiling():
        return False
    for group in (inputs, params.values(), controls.values()):
        for t in group:
            if not (t.is_cpu and t.dtype in _REALS):
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


def ptr(t: torch.Tensor | None):
    """A tensor's data as a ctypes pointer, for functions without argtypes."""
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def address(t: torch.Tensor | None) -> int | None:
    """A tensor's data address, for a declared kernel's pointer parameter (argtypes convert it)."""
    return None if t is None else t.data_ptr()


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


def per_sample(t: torch.Tensor | None) -> int:
    """The kernels' flag for a prepared parameter: 1 for `[batch, samples]`, 0 for `[batch, 1]`."""
    return int(t is not None and t.shape[-1] > 1)
