"""Bad input, as the CLI reports it: ``FILE: key.path: message`` problems (exit 2).

The lowest model module: every stage raises ``ScenarioError`` without importing the loader.
"""

from __future__ import annotations

from dataclasses import dataclass


class ScenarioError(Exception):
    """Bad input: one or more ``FILE: key.path: message`` problems. The CLI exits 2 on it."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{one_line(self.path)}: " if self.path else ""
        file = self.file if len(self.file) <= 300 else f"{self.file[:140]}...{self.file[-140:]}"
        return f"{one_line(file)}: {where}{one_line(self.message)}"


def one_line(text: str) -> str:
    """Escape control characters (a key may contain a newline) so every problem stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
