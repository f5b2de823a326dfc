"""Digit alphabets: how a grid size's values are written as single characters.

Values are always 1..n inside the solver. Text forms differ: 9x9 uses 1-9,
16x16 uses 1-9A-G in this project (what the model emits) but many 16x16
collections use 0-9A-F. We remember which one a puzzle came in with so the
solution is written back in the same symbols.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PuzzleFormatError

BLANKS = frozenset(".0")


@dataclass(frozen=True)
class Alphabet:
    """The n symbols of one grid size, and the characters that mean 'blank'."""

    symbols: str
    blanks: frozenset[str] = BLANKS

    @property
    def size(self) -> int:
        return len(self.symbols)

    def value(self, ch: str) -> int:
        """1-based value of a symbol, 0 for a blank; raises on anything else."""
        if ch in self.blanks:
            return 0
        idx = self.symbols.find(ch.upper())
        if idx < 0 or len(ch) != 1:
            raise PuzzleFormatError(
                f"symbol {ch!r} is not allowed in a {self.size}x{self.size} grid "
                f"(allowed: {self.symbols} and {'/'.join(sorted(self.blanks))} for blanks)"
            )
        return idx + 1

    def symbol(self, value: int) -> str:
        return self.symbols[value - 1] if value else "."


_BASE36 = "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
HEX16 = Alphabet("0123456789ABCDEF", frozenset("."))


def default_alphabet(size: int) -> Alphabet:
    """1..9 then letters: 16x16 becomes 1-9A-G, the form our model reads and writes."""
    if not 1 <= size <= len(_BASE36):
        raise PuzzleFormatError(f"grid size {size} is not supported (1 to {len(_BASE36)})")
    return Alphabet(_BASE36[:size])


def detect_alphabet(size: int, text: str) -> Alphabet:
    """Pick the alphabet a grid string was written in.

    Only 16x16 is ambiguous. A '0' is a digit of the 0-9A-F form when the
    string also uses '.' for its blanks and has no 'G'; with no '.' at all the
    '0's must be the blanks (a puzzle has blanks) of the 1-9A-G form.
    """
    if size == 16:
        upper = text.upper()
        if "0" in upper and "." in upper and "G" not in upper:
            return HEX16
    return default_alphabet(size)
