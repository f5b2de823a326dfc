"""Variable numbering for the CNF: one pool per puzzle.

Cell literals get fixed numbers 1..n^3 (so a solution is read back without a
lookup, and the uniqueness check can block exactly those); every auxiliary
variable (selectors, partial sums) comes from ``aux`` with a hashable key, so
two encoders can never collide on a number.
"""

from __future__ import annotations

from collections.abc import Hashable


class VarPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self.num_cell_vars = size**3
        self._next = self.num_cell_vars + 1
        self._ids: dict[Hashable, int] = {}
        self._keys: dict[int, Hashable] = {}

    def cell(self, r: int, c: int, d: int) -> int:
        """Literal 'cell (r, c) holds digit d' (0-based r, c; d in 1..n)."""
        n = self.size
        return (r * n + c) * n + d

    def aux(self, key: Hashable) -> int:
        """A fresh or remembered auxiliary variable named by ``key``."""
        vid = self._ids.get(key)
        if vid is None:
            vid = self._next
            self._next += 1
            self._ids[key] = vid
            self._keys[vid] = key
        return vid

    def key(self, vid: int) -> Hashable:
        if 1 <= vid <= self.num_cell_vars:
            n = self.size
            q, d = divmod(vid - 1, n)
            r, c = divmod(q, n)
            return ("cell", r, c, d + 1)
        return self._keys[vid]

    @property
    def top(self) -> int:
        """Largest variable number handed out so far."""
        return self._next - 1
