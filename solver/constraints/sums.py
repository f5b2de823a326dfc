"""Sum rules: killer cages, little killers, sandwiches and arrows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..cardinality import Clause, cells_take_set, digit_sets, distinct, linear_sum
from ..cells import Cell, parse_ref, parse_refs, ref, refs
from ..errors import PuzzleFormatError
from ..pool import VarPool
from .base import Constraint, GridValues, fp_number, int_field, register

DIRECTIONS = {"DR": (1, 1), "DL": (1, -1), "UR": (-1, 1), "UL": (-1, -1)}


@register
@dataclass(frozen=True)
class Killer(Constraint):
    """Digits in the cage do not repeat and (if given) add up to the sum."""

    cage: tuple[Cell, ...]
    total: int | None = None
    rule = "killer"
    fpuzzles_keys = ("killercage",)
    required = ("cells",)
    optional = ("sum",)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out = distinct(pool, self.cage)
        if self.total is not None:
            sets = digit_sets(pool.size, len(self.cage), self.total)
            out += cells_take_set(pool, self.cage, sets, ("killer", self.cage))
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = [grid[r][c] for r, c in self.cage]
        return len(set(vals)) == len(vals) and (self.total is None or sum(vals) == self.total)

    def to_rule(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.rule, "cells": refs(self.cage)}
        if self.total is not None:
            d["sum"] = self.total
        return d

    @classmethod
    def _make(cls, cage: list[Cell], total: int | None, size: int) -> "Killer":
        if len(cage) > size:
            raise PuzzleFormatError(f"a killer cage of {len(cage)} cells cannot hold distinct digits 1..{size}")
        if total is not None and not digit_sets(size, len(cage), total):
            raise PuzzleFormatError(f"no {len(cage)} distinct digits 1..{size} add up to {total}")
        return cls(tuple(cage), total)

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Killer":
        total = int_field(data, "sum", 1, size * (size + 1) // 2) if "sum" in data else None
        return cls._make(parse_refs(data["cells"], size, what="killer cells"), total, size)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        return [cls._make(parse_refs(item.get("cells"), size, what="killercage cells"), fp_number(item), size)]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        item: dict[str, Any] = {"cells": refs(self.cage, upper=True)}
        if self.total is not None:
            item["value"] = str(self.total)
        return [("killercage", item)]

    def cells(self) -> list[Cell]:
        return list(self.cage)


def diagonal_from(clue: Cell, direction: str, size: int) -> list[Cell]:
    dr, dc = DIRECTIONS[direction]
    r, c = clue[0] + dr, clue[1] + dc
    out = []
    while 0 <= r < size and 0 <= c < size:
        out.append((r, c))
        r, c = r + dr, c + dc
    return out


@register
@dataclass(frozen=True)
class LittleKiller(Constraint):
    """The clue outside the grid gives the sum along the diagonal it points at; digits may repeat."""

    clue: Cell  # 0-based, on the ring around the grid (row or column -1 / n)
    direction: str
    total: int
    size: int
    rule = "little_killer"
    fpuzzles_keys = ("littlekillersum",)
    required = ("clue", "direction", "sum")

    @property
    def diagonal(self) -> list[Cell]:
        return diagonal_from(self.clue, self.direction, self.size)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        return linear_sum(pool, [(c, 1) for c in self.diagonal], self.total, ("little_killer", self.clue, self.direction))

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return sum(grid[r][c] for r, c in self.diagonal) == self.total

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "clue": ref(self.clue), "direction": self.direction, "sum": self.total}

    @classmethod
    def _make(cls, clue: Cell, direction: object, total: int | None, size: int) -> "LittleKiller":
        if direction not in DIRECTIONS:
            raise PuzzleFormatError(f"little killer direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
        if 0 <= clue[0] < size and 0 <= clue[1] < size:
            raise PuzzleFormatError(f"little killer clue {ref(clue)} must sit outside the grid")
        if total is None:
            raise PuzzleFormatError(f"little killer at {ref(clue)} has no sum")
        lk = cls(clue, str(direction), total, size)
        if not lk.diagonal:
            raise PuzzleFormatError(f"little killer at {ref(clue)} pointing {direction} misses the grid")
        return lk

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "LittleKiller":
        total = int_field(data, "sum", 1, size * size)
        return cls._make(parse_ref(data["clue"], size, outside=True), data["direction"], total, size)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        total = fp_number(item)
        if total is None:  # an unfilled clue arrow in the editor: no rule
            return []
        return [cls._make(parse_ref(item.get("cell"), size, outside=True), item.get("direction"), total, size)]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("littlekillersum", {"cell": ref(self.clue, upper=True), "cells": refs(self.diagonal, upper=True),
                                     "direction": self.direction, "value": str(self.total)})]

    def cells(self) -> list[Cell]:
        return self.diagonal


@register
@dataclass(frozen=True)
class Sandwich(Constraint):
    """The digits between the 1 and the n of a row or column add up to the clue."""

    axis: str  # "row" or "col"
    index: int  # 0-based
    total: int
    rule = "sandwich"
    fpuzzles_keys = ("sandwichsum",)
    optional = ("row", "col", "sum")

    def line(self, size: int) -> list[Cell]:
        return [(self.index, k) for k in range(size)] if self.axis == "row" else [(k, self.index) for k in range(size)]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        n = pool.size
        line = self.line(n)
        out: list[Clause] = []
        selectors = []
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                lo, hi = min(i, j), max(i, j)
                between = line[lo + 1 : hi]
                sets = [()] if not between and self.total == 0 else digit_sets(n, len(between), self.total, range(2, n))
                one, top = pool.cell(*line[i], 1), pool.cell(*line[j], n)
                if not sets or (not between and self.total != 0):
                    out.append([-one, -top])
                    continue
                q = pool.aux(("sandwich", self.axis, self.index, i, j))
                selectors.append(q)
                out += [[-one, -top, q], [-q, one], [-q, top]]
                if between:
                    out += [[-q, *cl] for cl in cells_take_set(pool, between, sets, ("sandwich", self.axis, self.index, i, j))]
        out.append(selectors)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = [grid[r][c] for r, c in self.line(puzzle.size)]
        i, j = sorted((vals.index(1), vals.index(puzzle.size)))
        return sum(vals[i + 1 : j]) == self.total

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, self.axis: self.index + 1, "sum": self.total}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Sandwich":
        if ("row" in data) == ("col" in data):
            raise PuzzleFormatError("a sandwich rule needs exactly one of 'row' or 'col'")
        if "sum" not in data:
            raise PuzzleFormatError("rule 'sandwich' lacks 'sum'")
        axis = "row" if "row" in data else "col"
        return cls(axis, int_field(data, axis, 1, size) - 1, int_field(data, "sum", 0, size * (size + 1) // 2))

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        r, c = parse_ref(item.get("cell"), size, outside=True)
        total = fp_number(item)
        if total is None:
            return []
        if r in (-1, size) and 0 <= c < size:
            return [cls("col", c, total)]
        if c in (-1, size) and 0 <= r < size:
            return [cls("row", r, total)]
        raise PuzzleFormatError(f"sandwich clue {item.get('cell')!r} is not beside a row or column")

    @property
    def clue(self) -> Cell:
        """Where the clue is printed: the place above its column or left of its row, on the ring around the grid
        (0-based, as LittleKiller.clue)."""
        return (-1, self.index) if self.axis == "col" else (self.index, -1)

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("sandwichsum", {"cell": ref(self.clue, upper=True), "value": str(self.total)})]

    def cells(self) -> list[Cell]:
        return []


@register
@dataclass(frozen=True)
class Arrow(Constraint):
    """The digits on the shaft add up to the bulb (several bulb cells read as one number)."""

    bulb: tuple[Cell, ...]
    shaft: tuple[Cell, ...]
    rule = "arrow"
    fpuzzles_keys = ("arrow",)
    required = ("bulb", "line")

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        m = len(self.bulb)
        terms = [(b, -(10 ** (m - 1 - k))) for k, b in enumerate(self.bulb)] + [(c, 1) for c in self.shaft]
        return linear_sum(pool, terms, 0, ("arrow", self.bulb, self.shaft))

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        number = int("".join(str(grid[r][c]) for r, c in self.bulb))
        return number == sum(grid[r][c] for r, c in self.shaft)

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "bulb": refs(self.bulb), "line": refs(self.shaft)}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Arrow":
        bulb = parse_refs(data["bulb"], size, what="arrow bulb")
        shaft = parse_refs(data["line"], size, what="arrow line")
        if set(bulb) & set(shaft):
            raise PuzzleFormatError("an arrow's line must not run through its bulb")
        return cls(tuple(bulb), tuple(shaft))

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        bulb = sorted(parse_refs(item.get("cells"), size, what="arrow bulb"))
        out: list[Constraint] = []
        for line in item.get("lines") or []:
            shaft = [c for c in parse_refs(line, size, what="arrow line") if c not in bulb]
            if shaft:
                out.append(cls(tuple(bulb), tuple(shaft)))
        return out

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        start = min(self.bulb, key=lambda b: max(abs(b[0] - self.shaft[0][0]), abs(b[1] - self.shaft[0][1])))
        return [("arrow", {"cells": refs(self.bulb, upper=True), "lines": [refs((start, *self.shaft), upper=True)]})]

    def cells(self) -> list[Cell]:
        return [*self.bulb, *self.shaft]
