"""User-facing errors: one line, naming the file, node and key, with a suggestion."""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest valid choice, or "" if none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


class DiffmoogError(Exception):
    """Base class for mistakes a user can fix; CLIs print it as one line and exit with code 2."""


class SpecError(DiffmoogError):
    """A chain YAML (or preset) is invalid."""

    def __init__(self, message: str, file: str | None = None, node: str | None = None,
                 key: str | None = None):
        self.file, self.node, self.key, self.reason = file, node, key, message
        where = []
        if file:
            where.append(str(file))
        if node:
            where.append(f"node '{node}'")
        if key:
            where.append(f"key '{key}'")
        # One line, even when a user's key or value contains a newline.
        text = ": ".join(where + [message])
        super().__init__(text.replace("\r", "\\r").replace("\n", "\\n"))


class ConfigError(DiffmoogError):
    """A training/evaluation config or command-line value is invalid."""

    def __init__(self, message: str):
        # One line, even when a user's key or value contains a newline.
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))
