"""Variant rules. Importing this package registers every rule class."""

from . import cells, groups, lines, pairs, sums  # noqa: F401  (registration side effect)
from .base import FPUZZLES, RULES, Constraint, rule_from_json

__all__ = ["Constraint", "FPUZZLES", "RULES", "rule_from_json"]
