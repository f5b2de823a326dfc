"""Rules on single cells or small groups: odd/even, minimum/maximum, quadruples, clones."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar, Mapping

from ..cardinality import Clause, forbid_digits, pair_relation
from ..cells import Cell, parse_ref, parse_refs, refs
from ..errors import PuzzleFormatError
from ..pool import VarPool
from .base import Constraint, GridValues, register


@dataclass(frozen=True)
class CellSetRule(Constraint):
    """A rule on each of a set of cells; f-puzzles lists them one cell per item."""

    where: tuple[Cell, ...]
    required = ("cells",)

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "cells": refs(self.where)}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> Constraint:
        return cls(tuple(parse_refs(data["cells"], size, what=f"{cls.rule} cells")))

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        return [cls((parse_ref(item.get("cell"), size),))]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [(self.fpuzzles_keys[0], {"cell": r}) for r in refs(self.where, upper=True)]

    def cells(self) -> list[Cell]:
        return list(self.where)


@dataclass(frozen=True)
class _Parity(CellSetRule):
    remainder: ClassVar[int]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for cell in self.where:
            out += forbid_digits(pool, cell, [d for d in range(1, pool.size + 1) if d % 2 != self.remainder])
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return all(grid[r][c] % 2 == self.remainder for r, c in self.where)


@register
@dataclass(frozen=True)
class Odd(_Parity):
    rule = "odd"
    fpuzzles_keys = ("odd",)
    remainder = 1


@register
@dataclass(frozen=True)
class Even(_Parity):
    rule = "even"
    fpuzzles_keys = ("even",)
    remainder = 0


def _neighbours(cell: Cell, size: int) -> list[Cell]:
    r, c = cell
    return [(r + dr, c + dc) for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)) if 0 <= r + dr < size and 0 <= c + dc < size]


@dataclass(frozen=True)
class _Extreme(CellSetRule):
    """Shaded cells beat their side neighbours; neighbours shaded the same way are exempt
    ("grey cells are greater than any adjacent white cell")."""

    greater: ClassVar[bool]

    def _beats(self, x: int, y: int) -> bool:
        return x > y if self.greater else x < y

    def _pairs(self, puzzle) -> list[tuple[Cell, Cell]]:
        shaded = {cell for c in puzzle.constraints if type(c) is type(self) for cell in c.cells()}
        return [(cell, nb) for cell in self.where for nb in _neighbours(cell, puzzle.size) if nb not in shaded]

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for cell, nb in self._pairs(puzzle):
            out += pair_relation(pool, cell, nb, self._beats)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return all(self._beats(grid[a[0]][a[1]], grid[b[0]][b[1]]) for a, b in self._pairs(puzzle))


@register
@dataclass(frozen=True)
class Maximum(_Extreme):
    """The cell is greater than each side-adjacent cell."""

    rule = "maximum"
    fpuzzles_keys = ("maximum",)
    greater = True


@register
@dataclass(frozen=True)
class Minimum(_Extreme):
    """The cell is smaller than each side-adjacent cell."""

    rule = "minimum"
    fpuzzles_keys = ("minimum",)
    greater = False


@register
@dataclass(frozen=True)
class Quadruple(Constraint):
    """Each listed digit appears (as often as listed) in the cells around the circle."""

    where: tuple[Cell, ...]
    digits: tuple[int, ...]
    rule = "quadruple"
    fpuzzles_keys = ("quadruple",)
    required = ("cells", "digits")

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for d in set(self.digits):
            need = self.digits.count(d)
            # "at least `need` of the cells hold d": every group of len-need+1 cells holds one.
            for group in combinations(self.where, len(self.where) - need + 1):
                out.append([pool.cell(r, c, d) for r, c in group])
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = [grid[r][c] for r, c in self.where]
        return all(vals.count(d) >= self.digits.count(d) for d in set(self.digits))

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "cells": refs(self.where), "digits": list(self.digits)}

    @classmethod
    def _make(cls, cells: list[Cell], digits: object, size: int) -> "Quadruple":
        if not isinstance(digits, list) or not 1 <= len(digits) <= len(cells):
            raise PuzzleFormatError(f"quadruple digits must be a list of 1..{len(cells)} digits, got {digits!r}")
        try:
            vals = tuple(sorted(int(d) for d in digits))
        except (TypeError, ValueError):
            raise PuzzleFormatError(f"quadruple digits {digits!r} are not numbers") from None
        if any(not 1 <= v <= size for v in vals):
            raise PuzzleFormatError(f"quadruple digits {digits!r} are outside 1..{size}")
        return cls(tuple(cells), vals)

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Quadruple":
        return cls._make(parse_refs(data["cells"], size, what="quadruple cells"), data["digits"], size)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        return [cls._make(parse_refs(item.get("cells"), size, what="quadruple cells"), item.get("values"), size)]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("quadruple", {"cells": refs(self.where, upper=True), "values": list(self.digits)})]

    def cells(self) -> list[Cell]:
        return list(self.where)


@register
@dataclass(frozen=True)
class Clone(Constraint):
    """Cells in the same position of two shapes hold the same digit."""

    where: tuple[Cell, ...]
    clones: tuple[Cell, ...]
    rule = "clone"
    fpuzzles_keys = ("clone",)
    required = ("cells", "clone")

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        for a, b in zip(self.where, self.clones):
            out += pair_relation(pool, a, b, lambda x, y: x == y)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        return all(grid[a[0]][a[1]] == grid[b[0]][b[1]] for a, b in zip(self.where, self.clones))

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "cells": refs(self.where), "clone": refs(self.clones)}

    @classmethod
    def _make(cls, a: list[Cell], b: list[Cell]) -> "Clone":
        if len(a) != len(b):
            raise PuzzleFormatError(f"a clone pairs {len(a)} cells with {len(b)}")
        return cls(tuple(a), tuple(b))

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Clone":
        return cls._make(parse_refs(data["cells"], size, what="clone cells"), parse_refs(data["clone"], size, what="clone"))

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        return [cls._make(parse_refs(item.get("cells"), size, what="clone cells"),
                          parse_refs(item.get("cloneCells"), size, what="cloneCells"))]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [("clone", {"cells": refs(self.where, upper=True), "cloneCells": refs(self.clones, upper=True)})]

    def cells(self) -> list[Cell]:
        return [*self.where, *self.clones]
