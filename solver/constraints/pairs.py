"""Rules on pairs of cells: kropki dots, XV, and their negative forms, non-consecutive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..cardinality import Clause, pair_forbidden, pair_relation
from ..cells import Cell, orthogonal_pairs, parse_refs, refs
from ..errors import PuzzleFormatError
from ..pool import VarPool
from .base import Constraint, FlagRule, GridValues, fp_number, int_field, register

KROPKI_DEFAULT = {"white": 1, "black": 2}
KROPKI_FPUZZLES = {"difference": "white", "ratio": "black"}
XV_LETTERS = {"X": 10, "V": 5}


def kropki_holds(color: str, value: int, x: int, y: int) -> bool:
    return abs(x - y) == value if color == "white" else (x == value * y or y == value * x)


def _pair(data: object, size: int, what: str) -> tuple[Cell, Cell]:
    cells = parse_refs(data, size, min_len=2, what=what)
    if len(cells) != 2:
        raise PuzzleFormatError(f"{what} must name exactly two cells, got {data!r}")
    return cells[0], cells[1]


@register
@dataclass(frozen=True)
class Kropki(Constraint):
    """White dot: the two digits differ by ``value`` (1). Black dot: one is ``value`` (2) times the other."""

    a: Cell
    b: Cell
    color: str
    value: int
    rule = "kropki"
    fpuzzles_keys = tuple(KROPKI_FPUZZLES)
    required = ("cells", "color")
    optional = ("value",)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        return pair_relation(pool, self.a, self.b, lambda x, y: kropki_holds(self.color, self.value, x, y))

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return kropki_holds(self.color, self.value, grid[self.a[0]][self.a[1]], grid[self.b[0]][self.b[1]])

    def to_rule(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.rule, "color": self.color, "cells": refs((self.a, self.b))}
        if self.value != KROPKI_DEFAULT[self.color]:
            d["value"] = self.value
        return d

    @property
    def standard(self) -> bool:
        return self.value == KROPKI_DEFAULT[self.color]

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Kropki":
        color = data["color"]
        if color not in KROPKI_DEFAULT:
            raise PuzzleFormatError(f"kropki color {color!r} is not 'white' or 'black'")
        value = int_field(data, "value", 1, size) if "value" in data else KROPKI_DEFAULT[color]
        return cls(*_pair(data["cells"], size, "kropki cells"), color, value)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        color = KROPKI_FPUZZLES[key]
        value = fp_number(item)
        return [cls(*_pair(item.get("cells"), size, f"{key} cells"), color, value or KROPKI_DEFAULT[color])]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        key = "difference" if self.color == "white" else "ratio"
        item: dict[str, Any] = {"cells": refs((self.a, self.b), upper=True)}
        if not self.standard:
            item["value"] = str(self.value)
        return [(key, item)]

    def cells(self) -> list[Cell]:
        return [self.a, self.b]


def _marked_pairs(puzzle, kinds: tuple[type, ...]) -> set[frozenset[Cell]]:
    return {frozenset(c.cells()) for c in puzzle.constraints if isinstance(c, kinds)}


@register
@dataclass(frozen=True)
class KropkiNegative(Constraint):
    """All dots of this colour are shown: side-adjacent cells without any dot do not have the relation."""

    color: str
    rule = "kropki_negative"
    fpuzzles_keys = ("negative",)
    required = ("color",)

    def _free_pairs(self, puzzle) -> list[tuple[Cell, Cell]]:
        marked = _marked_pairs(puzzle, (Kropki,))
        return [(a, b) for a, b in orthogonal_pairs(puzzle.size) if frozenset((a, b)) not in marked]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        v = KROPKI_DEFAULT[self.color]
        out: list[Clause] = []
        for a, b in self._free_pairs(puzzle):
            out += pair_forbidden(pool, a, b, lambda x, y: kropki_holds(self.color, v, x, y))
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        v = KROPKI_DEFAULT[self.color]
        return not any(kropki_holds(self.color, v, grid[a[0]][a[1]], grid[b[0]][b[1]]) for a, b in self._free_pairs(puzzle))

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "color": self.color}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "KropkiNegative":
        if data["color"] not in KROPKI_DEFAULT:
            raise PuzzleFormatError(f"kropki_negative color {data['color']!r} is not 'white' or 'black'")
        return cls(data["color"])

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        # f-puzzles: "negative": ["ratio", "difference", "xv"] lists the marks shown exhaustively.
        if item == "xv":
            return [XVNegative()]
        if item in KROPKI_FPUZZLES:
            return [cls(KROPKI_FPUZZLES[item])]
        raise PuzzleFormatError(f"f-puzzles negative constraint {item!r} is not ratio, difference or xv")

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("negative", "difference" if self.color == "white" else "ratio")]


@register
@dataclass(frozen=True)
class XV(Constraint):
    """X: the two digits add up to 10; V: to 5."""

    a: Cell
    b: Cell
    total: int
    rule = "xv"
    fpuzzles_keys = ("xv",)
    required = ("cells", "sum")

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        return pair_relation(pool, self.a, self.b, lambda x, y: x + y == self.total)

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return grid[self.a[0]][self.a[1]] + grid[self.b[0]][self.b[1]] == self.total

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "cells": refs((self.a, self.b)), "sum": self.total}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "XV":
        return cls(*_pair(data["cells"], size, "xv cells"), int_field(data, "sum", 3, 2 * size - 1))

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        letter = str(item.get("value", "")).upper()
        if letter not in XV_LETTERS:
            raise PuzzleFormatError(f"xv value {item.get('value')!r} is not X or V")
        return [cls(*_pair(item.get("cells"), size, "xv cells"), XV_LETTERS[letter])]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        letter = {v: k for k, v in XV_LETTERS.items()}.get(self.total)
        if letter is None:
            raise PuzzleFormatError(f"an XV sum of {self.total} has no f-puzzles letter")
        return [("xv", {"cells": refs((self.a, self.b), upper=True), "value": letter})]

    def cells(self) -> list[Cell]:
        return [self.a, self.b]


@register
@dataclass(frozen=True)
class XVNegative(FlagRule):
    """All X and V marks are shown: unmarked side-adjacent cells add up to neither 5 nor 10."""

    rule = "xv_negative"

    def _free_pairs(self, puzzle) -> list[tuple[Cell, Cell]]:
        marked = _marked_pairs(puzzle, (XV,))
        return [(a, b) for a, b in orthogonal_pairs(puzzle.size) if frozenset((a, b)) not in marked]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for a, b in self._free_pairs(puzzle):
            out += pair_forbidden(pool, a, b, lambda x, y: x + y in (5, 10))
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return not any(grid[a[0]][a[1]] + grid[b[0]][b[1]] in (5, 10) for a, b in self._free_pairs(puzzle))

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("negative", "xv")]


@register
@dataclass(frozen=True)
class NonConsecutive(FlagRule):
    """Side-adjacent cells never hold consecutive digits, except across a white dot.

    A white dot says its two cells *are* consecutive; f-puzzles puzzles combine
    the two rules that way ("all white dots are given"), so dotted pairs are exempt.
    """

    rule = "nonconsecutive"
    fpuzzles_keys = ("nonconsecutive",)

    def _pairs(self, puzzle) -> list[tuple[Cell, Cell]]:
        dotted = {frozenset(c.cells()) for c in puzzle.constraints if isinstance(c, Kropki) and c.color == "white"}
        return [(a, b) for a, b in orthogonal_pairs(puzzle.size) if frozenset((a, b)) not in dotted]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for a, b in self._pairs(puzzle):
            out += pair_forbidden(pool, a, b, lambda x, y: abs(x - y) == 1)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return all(abs(grid[a[0]][a[1]] - grid[b[0]][b[1]]) != 1 for a, b in self._pairs(puzzle))

