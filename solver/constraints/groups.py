"""Extra groups of distinct digits (diagonals, windoku, disjoint sets, extra regions)
and the chess-move rules (anti-knight, anti-king)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..cardinality import Clause, all_digits_once, distinct, pair_forbidden
from ..cells import KING_DIAGONAL, KNIGHT, Cell, move_pairs, parse_refs, refs
from ..errors import PuzzleFormatError
from ..pool import VarPool
from .base import Constraint, FlagRule, GridValues, register


def _groups_hold(grid: GridValues, groups: list[list[Cell]], size: int) -> bool:
    for g in groups:
        vals = [grid[r][c] for r, c in g]
        if len(set(vals)) != len(vals):
            return False
    return True


def _encode_groups(pool: VarPool, groups: list[list[Cell]]) -> list[Clause]:
    out: list[Clause] = []
    for g in groups:
        out += all_digits_once(pool, g) if len(g) == pool.size else distinct(pool, g)
    return out


@dataclass(frozen=True)
class _Groups(FlagRule):
    """A global rule that adds groups of cells whose digits do not repeat."""

    def groups(self, puzzle) -> list[list[Cell]]:
        raise NotImplementedError

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        return _encode_groups(pool, self.groups(puzzle))

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return _groups_hold(grid, self.groups(puzzle), puzzle.size)



@register
@dataclass(frozen=True)
class DiagonalPositive(_Groups):
    """The diagonal from bottom-left to top-right holds distinct digits."""

    rule = "diagonal+"
    fpuzzles_keys = ("diagonal+",)

    def groups(self, puzzle) -> list[list[Cell]]:
        n = puzzle.size
        return [[(n - 1 - i, i) for i in range(n)]]


@register
@dataclass(frozen=True)
class DiagonalNegative(_Groups):
    """The diagonal from top-left to bottom-right holds distinct digits."""

    rule = "diagonal-"
    fpuzzles_keys = ("diagonal-",)

    def groups(self, puzzle) -> list[list[Cell]]:
        return [[(i, i) for i in range(puzzle.size)]]


@register
@dataclass(frozen=True)
class DisjointGroups(_Groups):
    """Cells in the same position of their box hold distinct digits."""

    rule = "disjoint"
    fpuzzles_keys = ("disjointgroups",)

    def groups(self, puzzle) -> list[list[Cell]]:
        if puzzle.box is None:
            raise PuzzleFormatError("disjoint groups need standard boxes, not irregular regions")
        br, bc = puzzle.box
        return [
            [(r, c) for r in range(puzzle.size) for c in range(puzzle.size) if (r % br, c % bc) == (i, j)]
            for i in range(br)
            for j in range(bc)
        ]


def windoku_windows(size: int, box: tuple[int, int]) -> list[list[Cell]]:
    """The box-shaped windows one cell in from each box corner (four on 9x9)."""
    br, bc = box
    starts_r = list(range(1, size - br, br + 1))
    starts_c = list(range(1, size - bc, bc + 1))
    return [[(r0 + i, c0 + j) for i in range(br) for j in range(bc)] for r0 in starts_r for c0 in starts_c]


@register
@dataclass(frozen=True)
class Windoku(_Groups):
    """Extra box-shaped regions offset by one cell from the boxes (the shaded windows)."""

    rule = "windoku"

    def groups(self, puzzle) -> list[list[Cell]]:
        if puzzle.box is None or not windoku_windows(puzzle.size, puzzle.box):
            raise PuzzleFormatError(f"windoku needs standard boxes with room for windows, not a {puzzle.size}x{puzzle.size} of this layout")
        return windoku_windows(puzzle.size, puzzle.box)

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        # f-puzzles has no windoku flag: the windows become extra regions.
        return [("extraregion", {"cells": refs(w, upper=True)}) for w in self.groups(puzzle)]


@register
@dataclass(frozen=True)
class ExtraRegion(Constraint):
    """An extra region: its digits do not repeat."""

    where: tuple[Cell, ...]
    rule = "extra_region"
    fpuzzles_keys = ("extraregion",)
    required = ("cells",)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        return _encode_groups(pool, [list(self.where)])

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return _groups_hold(grid, [list(self.where)], puzzle.size)

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "cells": refs(self.where)}

    @classmethod
    def _make(cls, cells: list[Cell], size: int) -> "ExtraRegion":
        if len(cells) > size:
            raise PuzzleFormatError(f"an extra region of {len(cells)} cells cannot hold distinct digits 1..{size}")
        return cls(tuple(cells))

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "ExtraRegion":
        return cls._make(parse_refs(data["cells"], size, what="extra_region cells"), size)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        return [cls._make(parse_refs(item.get("cells"), size, what="extraregion cells"), size)]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("extraregion", {"cells": refs(self.where, upper=True)})]

    def cells(self) -> list[Cell]:
        return list(self.where)


@dataclass(frozen=True)
class _Moves(FlagRule):
    """Cells a given chess move apart never hold the same digit."""

    moves: ClassVar[list[tuple[int, int]]]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for a, b in move_pairs(puzzle.size, self.moves):
            out += pair_forbidden(pool, a, b, lambda x, y: x == y)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return all(grid[a[0]][a[1]] != grid[b[0]][b[1]] for a, b in move_pairs(puzzle.size, self.moves))



@register
@dataclass(frozen=True)
class AntiKnight(_Moves):
    rule = "antiknight"
    fpuzzles_keys = ("antiknight",)
    moves = KNIGHT


@register
@dataclass(frozen=True)
class AntiKing(_Moves):
    # Side neighbours share a row or column already; only the diagonal steps add anything.
    rule = "antiking"
    fpuzzles_keys = ("antiking",)
    moves = KING_DIAGONAL
