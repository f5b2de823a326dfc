"""Line rules: thermometers, German whispers, renban, palindromes, between lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..cardinality import Clause, cells_take_set, distinct, forbid_digits, pair_forbidden, pair_relation
from ..cells import Cell, parse_refs, refs
from ..errors import PuzzleFormatError
from ..pool import VarPool
from .base import Constraint, GridValues, fp_number, int_field, register


@dataclass(frozen=True)
class _Line(Constraint):
    """Shared reading and writing: a line is an ordered list of cells."""

    line: tuple[Cell, ...]
    min_len: ClassVar[int] = 2
    required = ("cells",)

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule, "cells": refs(self.line)}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> Constraint:
        return cls._checked(tuple(parse_refs(data["cells"], size, min_len=cls.min_len, what=f"{cls.rule} cells")), size)

    @classmethod
    def _checked(cls, line: tuple[Cell, ...], size: int, **kw: Any) -> Constraint:
        return cls(line, **kw)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        return [
            cls._checked(tuple(parse_refs(line, size, min_len=cls.min_len, what=f"{key} line")), size)
            for line in item.get("lines") or []
        ]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        return [(self.fpuzzles_keys[0], {"lines": [refs(self.line, upper=True)]})]

    def cells(self) -> list[Cell]:
        return list(self.line)


@register
@dataclass(frozen=True)
class Thermo(_Line):
    """Digits strictly increase from the bulb (first cell) along the line."""

    rule = "thermo"
    fpuzzles_keys = ("thermometer",)

    @classmethod
    def _checked(cls, line: tuple[Cell, ...], size: int, **kw: Any) -> Constraint:
        if len(line) > size:
            raise PuzzleFormatError(f"a thermometer of {len(line)} cells cannot increase strictly within 1..{size}")
        return cls(line)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        n, k = pool.size, len(self.line)
        out: list[Clause] = []
        for i, cell in enumerate(self.line):
            # The i-th cell needs i smaller digits before it and k-1-i larger after it.
            out += forbid_digits(pool, cell, [d for d in range(1, n + 1) if d <= i or d > n - (k - 1 - i)])
            for j in range(i + 1, k):
                gap = j - i
                out += pair_forbidden(pool, cell, self.line[j], lambda x, y, g=gap: y < x + g)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = [grid[r][c] for r, c in self.line]
        return all(a < b for a, b in zip(vals, vals[1:]))


@register
@dataclass(frozen=True)
class Whisper(_Line):
    """German whispers: neighbours on the line differ by at least ``diff`` (5 on 9x9)."""

    diff: int | None = None
    rule = "whisper"
    rule_aliases = ("whispers",)
    fpuzzles_keys = ("whispers",)
    optional = ("diff",)

    def gap(self, size: int) -> int:
        return self.diff if self.diff is not None else (size + 1) // 2

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        g = self.gap(pool.size)
        out: list[Clause] = []
        for a, b in zip(self.line, self.line[1:]):
            out += pair_relation(pool, a, b, lambda x, y: abs(x - y) >= g)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        g = self.gap(puzzle.size)
        return all(abs(grid[a[0]][a[1]] - grid[b[0]][b[1]]) >= g for a, b in zip(self.line, self.line[1:]))

    def to_rule(self) -> dict[str, Any]:
        d = super().to_rule()
        if self.diff is not None:
            d["diff"] = self.diff
        return d

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> Constraint:
        line = tuple(parse_refs(data["cells"], size, min_len=2, what="whisper cells"))
        return cls(line, int_field(data, "diff", 1, size - 1) if "diff" in data else None)

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list[Constraint]:
        diff = fp_number(item)
        return [cls(tuple(parse_refs(line, size, min_len=2, what="whispers line")), diff) for line in item.get("lines") or []]

    def to_fpuzzles(self, puzzle) -> list[tuple[str, Any]]:
        item: dict[str, Any] = {"lines": [refs(self.line, upper=True)]}
        if self.diff is not None:
            item["value"] = str(self.diff)
        return [("whispers", item)]


@register
@dataclass(frozen=True)
class Renban(_Line):
    """The line holds a set of consecutive digits in any order, none repeated."""

    rule = "renban"
    fpuzzles_keys = ("renban",)
    min_len = 1

    @classmethod
    def _checked(cls, line: tuple[Cell, ...], size: int, **kw: Any) -> Constraint:
        if len(line) > size:
            raise PuzzleFormatError(f"a renban line of {len(line)} cells cannot hold distinct digits 1..{size}")
        return cls(line)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        n, k = pool.size, len(self.line)
        sets = [tuple(range(s, s + k)) for s in range(1, n - k + 2)]
        return distinct(pool, self.line) + cells_take_set(pool, self.line, sets, ("renban", self.line))

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = sorted(grid[r][c] for r, c in self.line)
        return all(b == a + 1 for a, b in zip(vals, vals[1:]))


@register
@dataclass(frozen=True)
class Palindrome(_Line):
    """The line reads the same from either end."""

    rule = "palindrome"
    fpuzzles_keys = ("palindrome",)

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        out: list[Clause] = []
        k = len(self.line)
        for i in range(k // 2):
            out += pair_relation(pool, self.line[i], self.line[k - 1 - i], lambda x, y: x == y)
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = [grid[r][c] for r, c in self.line]
        return vals == vals[::-1]


@register
@dataclass(frozen=True)
class Between(_Line):
    """Cells on the line lie strictly between the digits at its two ends."""

    rule = "between"
    fpuzzles_keys = ("betweenline",)
    min_len = 3

    def encode(self, puzzle, pool: VarPool) -> list[Clause]:
        n = pool.size
        a, z = self.line[0], self.line[-1]
        out: list[Clause] = []
        for p in range(1, n + 1):
            for q in range(1, n + 1):
                lo, hi = min(p, q), max(p, q)
                ends = [-pool.cell(a[0], a[1], p), -pool.cell(z[0], z[1], q)]
                for m in self.line[1:-1]:
                    if hi - lo < 2:
                        out.append(ends)
                        break
                    out.append(ends + [pool.cell(m[0], m[1], v) for v in range(lo + 1, hi)])
        return out

    def satisfied(self, grid: GridValues, puzzle) -> bool:
        vals = [grid[r][c] for r, c in self.line]
        lo, hi = sorted((vals[0], vals[-1]))
        return all(lo < v < hi for v in vals[1:-1])
