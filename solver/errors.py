"""The error hierarchy shared by every stage.

It lives in the solver because the solver is the bottom of the stack: the
runtime and the exporter import it, never the reverse. Each class carries the
process exit status that product.md assigns to it, so the CLI maps errors to
exit codes in one place and library code never calls ``sys.exit``.
"""

from __future__ import annotations


class VlmSudokuError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code: int = 1


class InputError(VlmSudokuError):
    """Something the user gave us cannot be used (file, string, folder)."""

    exit_code = 1


class PuzzleFormatError(InputError):
    """A puzzle description is malformed (wrong length, alphabet, JSON shape)."""


class UnknownConstraint(PuzzleFormatError):
    """A rule the solver does not know; never silently ignored."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown constraint {name!r}{hint}")


class SearchLimit(VlmSudokuError):
    """The SAT search gave up at its propagation limit (only internal searches set one)."""


class NoSolution(VlmSudokuError):
    """The puzzle is contradictory: no grid satisfies it."""

    exit_code = 3


class MultipleSolutions(VlmSudokuError):
    """The puzzle has more than one solution."""

    exit_code = 4


class ModelOutputError(VlmSudokuError):
    """The model's answer is not valid rules or digits."""

    exit_code = 5
