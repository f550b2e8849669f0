"""The one YAML reader for chains, presets and configs.

Two things differ from plain `yaml.safe_load`:
- aliases are bounded: the document's node graph is composed first (aliases stay shared, nothing
  is copied), its expanded size is counted, and a "billion laughs" file is refused before any
  value is built;
- numbers follow YAML 1.2, so `1e6` and `1E-3` are floats (PyYAML's YAML 1.1 reads them as strings).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import yaml

# A chain or config has a few hundred nodes; a million expanded nodes is far beyond any real file
# and still loads in well under a second.
MAX_EXPANDED_NODES = 1_000_000
MAX_EXPANDED_CHARS = 10_000_000


class YamlLimitError(yaml.YAMLError):
    """The document expands beyond the bounds above (or an alias refers to itself)."""


class _Loader(yaml.SafeLoader):
    pass


# YAML 1.2 floats without a dot or an exponent sign: 1e6, -2E-3, 5e+2 (the 1.1 rules need "1.0e+6").
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _expanded_size(node) -> tuple[int, int]:
    """(nodes, scalar chars) of the document with every alias expanded, in time linear in the graph."""
    sizes: dict[int, tuple[int, int]] = {}
    visiting: set[int] = set()
    stack = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if key in sizes:
            continue
        if isinstance(current, yaml.ScalarNode):
            sizes[key] = (1, len(current.value))
            continue
        children = ([c for pair in current.value for c in pair] if isinstance(current, yaml.MappingNode)
                    else list(current.value))
        if children_done:
            visiting.discard(key)
            nodes, chars = 1, 0
            for child in children:
                n, c = sizes[id(child)]
                nodes, chars = nodes + n, chars + c
            sizes[key] = (min(nodes, MAX_EXPANDED_NODES + 1), min(chars, MAX_EXPANDED_CHARS + 1))
            continue
        if key in visiting:
            raise YamlLimitError("an alias refers to itself (recursive anchor)")
        visiting.add(key)
        stack.append((current, True))
        for child in children:
            if id(child) in visiting:
                raise YamlLimitError("an alias refers to itself (recursive anchor)")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(node)]


def loads(text: str):
    """Parse one YAML document with bounded aliases and YAML 1.2 numbers; raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes, chars = _expanded_size(node)
        if nodes > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
            raise YamlLimitError(f"aliases expand beyond {MAX_EXPANDED_NODES:,} nodes or "
                                 f"{MAX_EXPANDED_CHARS:,} characters (a 'billion laughs' file?)")
        try:
            return loader.construct_document(node)
        except (IndexError, ValueError, TypeError, OverflowError) as error:
            # PyYAML's constructors raise these for explicitly tagged bad values (`!!float ''`,
            # `!!int x`); they are bad input like any other.
            raise yaml.YAMLError(f"a tagged value cannot be read ({type(error).__name__}: {error})") from None
    finally:
        loader.dispose()


def describe(error: Exception) -> str:
    """One line for a YAML, I/O or encoding error: "invalid YAML at line 3: ..."."""
    if isinstance(error, YamlLimitError):
        return f"refused YAML: {error}"
    if isinstance(error, yaml.YAMLError):
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())  # one line
        return f"invalid YAML{where}: {problem}"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return str(error)


def read(path: str | Path, error: Callable[[str], Exception]):
    """Load a YAML file; any failure is raised as `error(one-line message)`."""
    try:
        return loads(Path(path).read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as failure:
        raise error(describe(failure)) from None
