"""The constraint interface and its two registries (rules JSON type, f-puzzles key).

Each variant is one small frozen dataclass that knows how to encode itself as
clauses, how to check a finished grid (an independent second implementation
the tests hold the encoding against), and how to read and write itself in our
compact rules JSON and in f-puzzles JSON.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..cardinality import Clause
from ..cells import Cell
from ..errors import PuzzleFormatError, UnknownConstraint
from ..pool import VarPool

if TYPE_CHECKING:
    from ..puzzle import Puzzle

GridValues = Sequence[Sequence[int]]

RULES: dict[str, type["Constraint"]] = {}
FPUZZLES: dict[str, type["Constraint"]] = {}


def register(cls: type["Constraint"]) -> type["Constraint"]:
    """Class decorator: make a constraint known under its rule type and f-puzzles key(s)."""
    for name in (cls.rule, *cls.rule_aliases):
        if name in RULES:
            raise RuntimeError(f"rule type {name!r} registered twice")
        RULES[name] = cls
    for key in cls.fpuzzles_keys:
        FPUZZLES[key] = cls
    return cls


class Constraint(ABC):
    #: ``type`` in the compact rules JSON.
    rule: ClassVar[str]
    #: Other spellings accepted when reading (never written).
    rule_aliases: ClassVar[tuple[str, ...]] = ()
    #: f-puzzles keys this class reads.
    fpuzzles_keys: ClassVar[tuple[str, ...]] = ()
    #: Keys of the rule object besides "type": required and optional.
    required: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def encode(self, puzzle: "Puzzle", pool: VarPool) -> list[Clause]:
        """Clauses over ``pool`` that hold exactly for grids obeying this rule."""

    @abstractmethod
    def satisfied(self, grid: GridValues, puzzle: "Puzzle") -> bool:
        """Does a complete grid obey this rule? Written from the rule's text, not the encoding."""

    @abstractmethod
    def to_rule(self) -> dict[str, Any]:
        """The compact rules JSON object."""

    @classmethod
    @abstractmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Constraint":
        """Parse a rules JSON object already checked by :func:`check_keys`."""

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list["Constraint"]:
        raise UnknownConstraint(key)

    def to_fpuzzles(self, puzzle: "Puzzle") -> list[tuple[str, Any]]:
        """(key, item) pairs: list keys get ``item`` appended, flag keys are set to it."""
        raise PuzzleFormatError(f"the {self.rule!r} rule has no f-puzzles form")

    def cells(self) -> list[Cell]:
        """Cells this rule draws on (for rendering and validation); empty for global rules."""
        return []


class FlagRule(Constraint):
    """A rule with no parameters: ``{"type": ...}`` in rules JSON, ``key: true`` in f-puzzles."""

    def to_rule(self) -> dict[str, Any]:
        return {"type": self.rule}

    @classmethod
    def from_rule(cls, data: Mapping[str, Any], size: int) -> "Constraint":
        return cls()

    @classmethod
    def from_fpuzzles(cls, key: str, item: Any, size: int) -> list["Constraint"]:
        return [cls()] if item else []

    def to_fpuzzles(self, puzzle: "Puzzle") -> list[tuple[str, Any]]:
        return [(self.fpuzzles_keys[0], True)]


def check_keys(data: Mapping[str, Any], cls: type[Constraint]) -> None:
    allowed = {"type", *cls.required, *cls.optional}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PuzzleFormatError(
            f"rule {cls.rule!r} has unknown key(s) {', '.join(map(repr, unknown))} "
            f"(allowed: {', '.join(sorted(allowed - {'type'}))or 'none'})"
        )
    missing = [k for k in cls.required if k not in data]
    if missing:
        raise PuzzleFormatError(f"rule {cls.rule!r} lacks {', '.join(map(repr, missing))}")


def rule_from_json(data: object, size: int) -> Constraint:
    if not isinstance(data, Mapping):
        raise PuzzleFormatError(f"a rule must be a JSON object, got {data!r}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise PuzzleFormatError(f"rule {dict(data)!r} has no string 'type'")
    cls = RULES.get(kind)
    if cls is None:
        raise UnknownConstraint(kind, tuple(k for k, v in RULES.items() if v.rule == k))
    check_keys(data, cls)
    return cls.from_rule(data, size)


def int_field(data: Mapping[str, Any], key: str, lo: int, hi: int, what: str | None = None) -> int:
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise PuzzleFormatError(f"{what or key} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def fp_number(item: Mapping[str, Any], key: str = "value") -> int | None:
    """f-puzzles stores numbers as strings ("15"); empty or missing means 'no number'."""
    v = item.get(key)
    if v is None or v == "":
        return None
    try:
        return int(str(v).strip())
    except ValueError:
        raise PuzzleFormatError(f"f-puzzles value {v!r} is not a number") from None
