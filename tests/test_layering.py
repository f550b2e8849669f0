"""Data flows one way: import arrows and private names, checked on the source with `ast`.

Layers, low to high: params/rng/spec/stream/chain with modules and native (the synth);
diffmoog.analysis (STFT, features, the spectral loss, metrics, Frechet, pitch) and
diffmoog.data (the dataset layout and readers); diffmoog.data_gen (create-data, the writer);
train and match on top. The synth imports none of the layers above it, analysis and the data
package neither the writer nor the trainer/matcher, and no module reaches into another
module's underscore-private names (it asks for a public one instead). docs/ARCHITECTURE.md
draws the same picture.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "diffmoog"
DATA_GEN = REPO / "data_gen"  # installed as diffmoog.data_gen (setup.cfg package_dir)

SYNTH = [PACKAGE / f"{name}.py" for name in ("chain", "spec", "params", "rng", "stream", "preset")]
SYNTH_PACKAGES = [PACKAGE / "modules", PACKAGE / "native"]
ABOVE_SYNTH = ("diffmoog.analysis", "diffmoog.data", "diffmoog.data_gen", "diffmoog.train", "diffmoog.match")
ABOVE_DATA = ("diffmoog.data_gen", "diffmoog.train", "diffmoog.match")
ABOVE_ANALYSIS = ("diffmoog.data", "diffmoog.data_gen", "diffmoog.train", "diffmoog.match")
# `module._name` uses that are allowed anyway, as "path: expression" (keep it empty if you can).
PRIVATE_ALLOWED: set[str] = set()


def module_name(path: Path, repo: Path = REPO) -> str:
    """The dotted name a source file under `repo` is imported as."""
    if path.is_relative_to(repo / "data_gen"):
        parts = ["diffmoog", "data_gen", *path.relative_to(repo / "data_gen").with_suffix("").parts]
    else:
        parts = list(path.relative_to(repo).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, repo: Path = REPO) -> set[str]:
    """Every module a file imports, at the top or inside a function (`from a import b` gives
    both a and a.b, since b may be a submodule)."""
    name = module_name(path, repo)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def sources(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in ([root] if root.is_file() else root.rglob("*.py")))


def forbidden_imports(files: list[Path], packages: tuple[str, ...], repo: Path = REPO) -> list[str]:
    return [f"{path.relative_to(repo)} imports {name}" for path in files
            for name in sorted(imported(path, repo)) if under(name, packages)]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str, where: str = "<source>") -> list[str]:
    """`other._name` and `from other import _name` in one file. An attribute whose name the file
    itself defines (a function, class, argument or assigned attribute) is its own business,
    e.g. `other._cache` inside the class that owns `_cache`."""
    tree = ast.parse(source, where)
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"{where}: from {node.module} import {a.name}" for a in node.names if is_private(a.name)]
        elif isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names
                      if any(is_private(part) for part in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{where}: {ast.unparse(node)}")
    return found


def test_the_data_package_does_not_import_the_writer_or_the_trainer():
    files = sources(PACKAGE / "data")
    assert len(files) > 5
    assert forbidden_imports(files, ABOVE_DATA) == []


def test_analysis_imports_no_data_training_or_matching():
    files = sources(PACKAGE / "analysis")
    assert len(files) > 5
    assert forbidden_imports(files, ABOVE_ANALYSIS) == []


def test_the_synth_imports_no_data_training_or_matching():
    files = sources(*SYNTH, *SYNTH_PACKAGES)
    assert len(files) > 10
    assert forbidden_imports(files, ABOVE_SYNTH) == []


def test_the_import_scan_resolves_relative_lazy_and_package_imports(tmp_path):
    folder = tmp_path / "diffmoog" / "data"
    folder.mkdir(parents=True)
    probe = folder / "probe.py"
    probe.write_text("from . import layout\nfrom ..data_gen import shard\nfrom .items import ItemRenderer\n"
                     "def f():\n    from diffmoog import train\n    import diffmoog.match.preset\n")
    names = imported(probe, tmp_path)
    assert {"diffmoog.data.layout", "diffmoog.data_gen.shard", "diffmoog.data.items", "diffmoog.train",
            "diffmoog.match.preset"} <= names
    assert forbidden_imports([probe], ABOVE_DATA, tmp_path) == [
        f"{Path('diffmoog/data/probe.py')} imports {name}" for name in
        ("diffmoog.data_gen", "diffmoog.data_gen.shard", "diffmoog.match.preset", "diffmoog.train")]
    assert module_name(DATA_GEN / "shard.py") == "diffmoog.data_gen.shard"
    assert module_name(PACKAGE / "data" / "__init__.py") == "diffmoog.data"


@pytest.mark.parametrize("source, expected", [
    ("from diffmoog import rng\nrng._mix32(x)\n", ["m.py: rng._mix32"]),
    ("def f(chain):\n    return chain._weights(1)\n", ["m.py: chain._weights"]),
    ("from diffmoog.modules.waveforms import _frac, phase\n", ["m.py: from diffmoog.modules.waveforms import _frac"]),
    ("import torch._dynamo\n", ["m.py: import torch._dynamo"]),
    ("class A:\n    def f(self, other):\n        self._n = 1\n        return other._n + self._n\n", []),
    ("def _helper():\n    pass\n_helper()\nx.__class__\n", []),
])
def test_the_private_name_scan(source, expected):
    assert private_uses(source, "m.py") == expected


def test_no_module_uses_another_modules_private_names():
    found = [use for path in sources(PACKAGE, DATA_GEN)
             for use in private_uses(path.read_text(), str(path.relative_to(REPO)))]
    assert [use for use in found if use not in PRIVATE_ALLOWED] == []
