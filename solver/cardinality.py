"""Clause builders shared by the constraint encoders.

Everything here returns clauses and never solves (the python-sat split). The
sum encodings follow what measured fastest with picosat: distinct-digit sums
(killer cages, sandwiches) enumerate the digit sets with one selector each, so
unit propagation prunes whole combinations; sums whose digits may repeat
(little killers, arrows) use a chain of partial-sum states, pruned to the
states from which the target is still reachable.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

from .cells import Cell
from .pool import VarPool

Clause = list[int]


def at_most_one(lits: Sequence[int]) -> list[Clause]:
    """Pairwise: n <= 16 keeps this small, and it propagates best."""
    return [[-a, -b] for a, b in combinations(lits, 2)]


def exactly_one(lits: Sequence[int]) -> list[Clause]:
    return [list(lits), *at_most_one(lits)]


def digit_lits(pool: VarPool, cell: Cell, digits: Iterable[int]) -> list[int]:
    return [pool.cell(cell[0], cell[1], d) for d in digits]


def distinct(pool: VarPool, cells: Sequence[Cell]) -> list[Clause]:
    """No digit twice among ``cells``."""
    n = pool.size
    out: list[Clause] = []
    for d in range(1, n + 1):
        out += at_most_one([pool.cell(r, c, d) for r, c in cells])
    return out


def all_digits_once(pool: VarPool, cells: Sequence[Cell]) -> list[Clause]:
    """A full unit: every digit exactly once among ``len(cells) == n`` cells."""
    n = pool.size
    out: list[Clause] = []
    for d in range(1, n + 1):
        out += exactly_one([pool.cell(r, c, d) for r, c in cells])
    return out


def forbid_digits(pool: VarPool, cell: Cell, digits: Iterable[int]) -> list[Clause]:
    return [[-pool.cell(cell[0], cell[1], d)] for d in digits]


def pair_relation(pool: VarPool, a: Cell, b: Cell, allowed) -> list[Clause]:
    """Clauses so that (value(a), value(b)) satisfies ``allowed(x, y)``.

    Written as 'a = x implies b in {y : allowed}' in both directions, which
    propagates as well as the full table and is much shorter when the
    relation is sparse (kropki, XV).
    """
    n = pool.size
    out: list[Clause] = []
    for x in range(1, n + 1):
        ys = [y for y in range(1, n + 1) if allowed(x, y)]
        out.append([-pool.cell(a[0], a[1], x)] + digit_lits(pool, b, ys))
    for y in range(1, n + 1):
        xs = [x for x in range(1, n + 1) if allowed(x, y)]
        out.append([-pool.cell(b[0], b[1], y)] + digit_lits(pool, a, xs))
    return out


def pair_forbidden(pool: VarPool, a: Cell, b: Cell, forbidden) -> list[Clause]:
    """Clauses excluding every (x, y) with ``forbidden(x, y)``: good for dense bans."""
    n = pool.size
    return [
        [-pool.cell(a[0], a[1], x), -pool.cell(b[0], b[1], y)]
        for x in range(1, n + 1)
        for y in range(1, n + 1)
        if forbidden(x, y)
    ]


def digit_sets(n: int, count: int, total: int | None, allowed: Iterable[int] | None = None) -> list[tuple[int, ...]]:
    """Sets of ``count`` distinct digits (from ``allowed``) adding up to ``total``."""
    digits = sorted(allowed) if allowed is not None else list(range(1, n + 1))
    return [s for s in combinations(digits, count) if total is None or sum(s) == total]


def cells_take_set(pool: VarPool, cells: Sequence[Cell], sets: Sequence[tuple[int, ...]], tag: Hashable) -> list[Clause]:
    """The (distinct) digits of ``cells`` form one of ``sets``: one selector per set.

    Empty ``sets`` means the constraint cannot hold: an empty clause.
    """
    if not sets:
        return [[]]
    if len(sets) == 1:
        (only,) = sets
        out = [digit_lits(pool, cell, only) for cell in cells]
        out += [[pool.cell(r, c, d) for r, c in cells] for d in only]
        return out
    selectors = [pool.aux((tag, "set", s)) for s in sets]
    out = [selectors]
    for sel, s in zip(selectors, sets):
        for cell in cells:
            out.append([-sel, *digit_lits(pool, cell, s)])
        for d in s:
            out.append([-sel] + [pool.cell(r, c, d) for r, c in cells])
    used = set().union(*sets)
    for cell in cells:
        out += forbid_digits(pool, cell, (d for d in range(1, pool.size + 1) if d not in used))
    return out


def linear_sum(pool: VarPool, terms: Sequence[tuple[Cell, int]], total: int, tag: Hashable) -> list[Clause]:
    """sum(weight * value(cell)) == total, digits free to repeat.

    A chain of partial-sum states p(i, v) = 'the first i terms add up to v',
    keeping only states reachable from 0 and from which ``total`` is still
    reachable, so propagation prunes digits from both ends.
    """
    n = pool.size
    k = len(terms)
    if k == 0:
        return [] if total == 0 else [[]]
    reach: list[set[int]] = [{0}]
    for _, w in terms:
        reach.append({v + w * d for v in reach[-1] for d in range(1, n + 1)})
    live: list[set[int]] = [set() for _ in range(k + 1)]
    live[k] = {total} & reach[k]
    for i in range(k - 1, -1, -1):
        w = terms[i][1]
        live[i] = {v for v in reach[i] if any(v + w * d in live[i + 1] for d in range(1, n + 1))}
    if not live[0]:
        return [[]]

    def state(i: int, v: int) -> int | None:
        # Layer 0 and layer k hold one certain state each: no variable needed.
        return None if i in (0, k) else pool.aux((tag, "sum", i, v))

    out: list[Clause] = []
    for i in range(1, k):
        out.append([state(i, v) for v in sorted(live[i])])  # type: ignore[misc]
    for i, (cell, w) in enumerate(terms):
        for v in sorted(live[i]):
            pre = state(i, v)
            head = [-pre] if pre is not None else []
            for d in range(1, n + 1):
                x = pool.cell(cell[0], cell[1], d)
                nxt = v + w * d
                if nxt in live[i + 1]:
                    post = state(i + 1, nxt)
                    if post is not None:
                        out.append(head + [-x, post])
                else:
                    out.append(head + [-x])
        # Backward support: reaching state u after term i needs a matching digit and predecessor.
        for u in sorted(live[i + 1]):
            post = state(i + 1, u)
            if post is None:
                continue
            preds = [(v, d) for v in live[i] for d in range(1, n + 1) if v + w * d == u]
            out.append([-post] + sorted({pool.cell(cell[0], cell[1], d) for _, d in preds}))
            if i > 0:
                out.append([-post] + sorted({state(i, v) for v, _ in preds}))  # type: ignore[arg-type]
    return out
