"""Fast seeded puzzles for training images, in a canonical rule order.

Training needs many readable puzzles, not minimal or even unique ones, so this
skips :func:`solver.generate.generate`'s uniqueness checks: one SAT solve per
rule set gives a base grid (cached per process), a random symmetry of it
(relabelled digits, shuffled bands and rows, flips, transposition, each kept
only where the global rules still hold) gives the solution, the generator's own
``clues_for`` draws the variant clues from it, and a random subset of the
solution becomes the givens.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from ...solver.constraints.base import Constraint
from ...solver.constraints.groups import windoku_windows
from ...solver.constraints.lines import Between, Palindrome, Renban, Whisper
from ...solver.constraints.pairs import NonConsecutive
from ...solver.errors import PuzzleFormatError
from ...solver.generate import GENERATED_KINDS, GLOBAL_KINDS, clues_for, random_regions, random_solution
from ...solver.puzzle import Grid, Puzzle, default_box

SIZES = (4, 6, 9, 16)
SIZE_WEIGHTS = {4: 1.0, 6: 1.5, 9: 6.0, 16: 1.0}
CLASSIC = "classic"
VARIANT_KINDS = GENERATED_KINDS
#: Kinds that never fit together on one puzzle (the second would repeat or contradict the first).
EXCLUSIVE = ({"kropki", "kropki_negative"}, {"xv", "xv_negative"})
#: Global rules that need standard boxes.
NEEDS_BOXES = {"windoku", "disjoint"}

#: Order of rule types in the rules answer: global rules first, then the marks, each in reading order.
RULE_ORDER = (
    "diagonal+", "diagonal-", "antiknight", "antiking", "nonconsecutive", "windoku", "disjoint",
    "kropki_negative", "xv_negative", "extra_region", "killer", "thermo", "arrow", "whisper", "renban",
    "palindrome", "between", "kropki", "xv", "odd", "even", "little_killer", "sandwich",
)
REVERSIBLE_LINES = (Whisper, Renban, Palindrome, Between)


def parse_kinds(spec: str | Sequence[str]) -> tuple[str, ...]:
    """'classic', 'all' or a comma list of generator kinds -> the pool to draw from. A variant kind written
    ``kind*N`` (N = 2..9) stands N times in the pool, so it is drawn about N times as often as the others
    (_choose_kinds never takes one kind twice for a puzzle); a pool without such weights is drawn from as before."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    out: list[str] = []
    extra: list[str] = []
    for item in items:
        name, _, times = item.partition("*")
        if times and (name not in VARIANT_KINDS or times not in tuple("23456789")):
            raise PuzzleFormatError(f"a weighted kind is a variant kind and a weight of 2 to 9, as killer*3: {item!r}")
        if name == "all":
            out += [CLASSIC, *VARIANT_KINDS]
        elif name == CLASSIC or name in VARIANT_KINDS:
            out.append(name)
            extra += [name] * (int(times) - 1 if times else 0)
        else:
            raise PuzzleFormatError(f"unknown puzzle kind {item!r} (known: all, {CLASSIC}, {', '.join(VARIANT_KINDS)})")
    return (*dict.fromkeys(out), *extra) or (CLASSIC,)


def _anchor(con: Constraint) -> tuple:
    clue = getattr(con, "clue", None)  # (little killer and sandwich clues outside the grid)
    if clue is not None:
        return clue
    cells = con.cells()
    return cells[0] if con.rule in ("thermo", "arrow") or isinstance(con, REVERSIBLE_LINES) else min(cells, default=())


def canonical(puzzle: Puzzle) -> Puzzle:
    """The same puzzle with its rules in the order a reader of the image can reproduce.

    Rule types follow :data:`RULE_ORDER`; within a type, rules go in reading order of
    their first cell (a clue's position for clues outside the grid); lines that read
    the same both ways start at their end that comes first in reading order.
    """
    cons = []
    for con in puzzle.constraints:
        if isinstance(con, REVERSIBLE_LINES) and con.line[-1] < con.line[0]:
            con = replace(con, line=tuple(reversed(con.line)))
        cons.append(con)
    rank = {r: i for i, r in enumerate(RULE_ORDER)}
    cons.sort(key=lambda c: (rank.get(c.rule, len(rank)), c.rule, _anchor(c), json.dumps(c.to_rule(), sort_keys=True)))
    return puzzle.with_constraints(cons)


@lru_cache(maxsize=64)
def _base_solution(template: Puzzle) -> Grid:
    return random_solution(template, random.Random(0), seeds=0)


JIGSAW_LAYOUTS = 256  # per size; each seen in 8 orientations with relabelled digits


@lru_cache(maxsize=4 * JIGSAW_LAYOUTS)
def _jigsaw_base(size: int, k: int) -> tuple[Grid, Grid]:
    """Jigsaw layout number ``k`` of this size and one grid for it (one SAT solve, then cached)."""
    rng = random.Random(f"jigsaw:{size}:{k}")
    template = Puzzle.create(size, regions=random_regions(size, rng))
    return template.regions, random_solution(template, rng, seeds=0)


def jigsaw_grid(size: int, rng: random.Random) -> tuple[Puzzle, Grid]:
    """A random jigsaw template and solution: a cached layout, turned or mirrored, digits relabelled."""
    regions, solution = _jigsaw_base(size, rng.randrange(JIGSAW_LAYOUTS))
    grids = [[list(r) for r in regions], [list(r) for r in solution]]
    if rng.random() < 0.5:
        grids = [[list(col) for col in zip(*g)] for g in grids]
    if rng.random() < 0.5:
        grids = [g[::-1] for g in grids]
    if rng.random() < 0.5:
        grids = [[row[::-1] for row in g] for g in grids]
    digits = list(range(1, size + 1))
    rng.shuffle(digits)
    solution = tuple(tuple(digits[v - 1] for v in row) for row in grids[1])
    return Puzzle.create(size, regions=grids[0]), solution


def _axis_perm(n: int, block: int, rng: random.Random, level: int) -> list[int]:
    """A permutation of rows (or columns) that keeps blocks of ``block`` together."""
    if level == 0:
        return list(range(n))
    if level == 1:
        return list(range(n))[:: rng.choice((1, -1))]
    blocks = list(range(n // block))
    rng.shuffle(blocks)
    out = []
    for b in blocks:
        inner = list(range(block))
        rng.shuffle(inner)
        out += [b * block + i for i in inner]
    return out


def shuffled_solution(template: Puzzle, rng: random.Random) -> Grid:
    """A random grid obeying ``template``: a symmetry of the cached base grid (one SAT solve per rule set)."""
    base = _base_solution(template)
    n = template.size
    br, bc = template.box or (n, n)
    nonconsecutive = any(isinstance(c, NonConsecutive) for c in template.constraints)
    digits = list(range(1, n + 1))
    if nonconsecutive:
        digits = digits[:: rng.choice((1, -1))]
    else:
        rng.shuffle(digits)
    levels = (2, 1, 0) if template.box is not None else (0,)
    for level in levels:
        rows, cols = _axis_perm(n, br, rng, level), _axis_perm(n, bc, rng, level)
        transpose = br == bc and level >= 1 and rng.random() < 0.5
        grid = [[digits[base[rows[r]][cols[c]] - 1] for c in range(n)] for r in range(n)]
        if transpose:
            grid = [list(col) for col in zip(*grid)]
        cand = tuple(tuple(row) for row in grid)
        if all(c.satisfied(cand, template) for c in template.constraints):
            return cand
    raise AssertionError("the identity symmetry must keep every rule")  # level 0 is a pure relabelling


def _choose_kinds(pool: Sequence[str], size: int, box: tuple[int, int] | None, rng: random.Random) -> list[str]:
    variants = [k for k in pool if k != CLASSIC]
    if not variants or (CLASSIC in pool and rng.random() < 0.4):
        return []
    if size == 4:  # no 4x4 grid is anti-king or non-consecutive
        variants = [k for k in variants if k not in ("antiking", "nonconsecutive")] or variants
    if box is None:  # random regions with a global rule can make a very hard (or unsolvable) SAT instance
        variants = [k for k in variants if k not in GLOBAL_KINDS]
    elif not windoku_windows(size, box):
        variants = [k for k in variants if k not in NEEDS_BOXES] or variants
    if not variants:
        return []
    count = min(len(set(variants)), rng.choices((1, 2, 3), (70, 25, 5))[0])
    chosen: list[str] = []
    for k in rng.sample(variants, len(variants)):
        if len(chosen) >= count:
            break
        if k in chosen:  # (a weighted kind stands several times in the pool: parse_kinds)
            continue
        if any(k in group and any(c in group for c in chosen) for group in EXCLUSIVE):
            continue
        if k in GLOBAL_KINDS and not _globals_ok([c for c in chosen if c in GLOBAL_KINDS] + [k], size):
            continue
        chosen.append(k)
    diagonals = [k for k in chosen if k.startswith("diagonal")]
    if len(diagonals) == 1 and rng.random() < 0.5:  # "Sudoku X": usually both diagonals
        other = "diagonal-" if diagonals[0] == "diagonal+" else "diagonal+"
        if other in variants and _globals_ok([c for c in chosen if c in GLOBAL_KINDS] + [other], size):
            chosen.append(other)
    return chosen


def _globals_ok(globals_: list[str], size: int) -> bool:
    """Global rule sets whose first SAT solve stays quick (measured: some pairs take minutes).

    Both diagonals plus at most one other global rule; on 16x16 the diagonals or one
    other rule; never non-consecutive with windoku.
    """
    others = [k for k in globals_ if not k.startswith("diagonal")]
    if len(others) > 1 or {"nonconsecutive", "windoku"} <= set(globals_):
        return False
    return size < 16 or not (others and len(globals_) > 1)


def _given_fraction(kinds: Sequence[str], rng: random.Random) -> float:
    clue_heavy = {"killer", "thermo", "arrow", "little_killer", "sandwich", "kropki", "kropki_negative", "xv", "xv_negative"}
    if not kinds:
        return rng.uniform(0.24, 0.48)
    if set(kinds) & clue_heavy:
        return rng.choice((0.0, rng.uniform(0.0, 0.25)))
    return rng.uniform(0.12, 0.35)


def sample_puzzle(rng: random.Random, *, sizes: Sequence[int] = SIZES, kinds: Sequence[str] = (CLASSIC,)) -> tuple[Puzzle, Grid]:
    """A random puzzle (canonical rule order) and a solution of it; all randomness from ``rng``."""
    sizes = [s for s in sizes if s in SIZE_WEIGHTS] or [9]
    size = rng.choices(sizes, [SIZE_WEIGHTS[s] for s in sizes])[0]
    jigsaw = rng.random() < 0.15
    box = None if jigsaw else default_box(size)
    if size == 6 and box is not None and rng.random() < 0.2:
        box = (3, 2)  # the other way round: the rules answer says "box":[3,2]
    chosen = _choose_kinds(kinds, size, box, rng)
    for _attempt in range(4):
        globals_ = [GLOBAL_KINDS[k]() for k in chosen if k in GLOBAL_KINDS]
        try:
            if box is None:  # jigsaw: never with a global rule (see _choose_kinds)
                template, solution = jigsaw_grid(size, rng)
            else:
                template = Puzzle.create(size, box=box, constraints=globals_)
                solution = shuffled_solution(template, rng)
            break
        except PuzzleFormatError:  # these global rules admit no grid here: drop them and try again
            chosen = [k for k in chosen if k not in GLOBAL_KINDS]
    else:
        raise PuzzleFormatError(f"no {size}x{size} grid found for kinds {chosen}")
    clues: list[Constraint] = list(globals_)
    for kind in chosen:
        if kind not in GLOBAL_KINDS:
            clues += clues_for(kind, solution, rng)
    frac = _given_fraction(chosen, rng)
    cells = [(r, c) for r in range(size) for c in range(size)]
    keep = set(rng.sample(cells, int(round(frac * size * size))))
    givens = [[solution[r][c] if (r, c) in keep else 0 for c in range(size)] for r in range(size)]
    puzzle = replace(template, constraints=tuple(clues)).with_givens(givens)
    return canonical(puzzle), solution


def fewer_clues(puzzle: Puzzle, rng: random.Random, most: int = 2) -> Puzzle:
    """The puzzle with 1 to ``most`` clues of each marking (cages, lines, dots, outside sums...), the global rules,
    the "all dots are given" rules and the dots they speak for kept whole, as is a marking that is one rule over
    many cells (odd/even shading); givens unchanged.

    Why: the model names the rule types it sees but writes no marking's cells right (run 13 named killer,
    thermo, renban, odd/even and jigsaw in every by-kind puzzle, the cells in none); a picture with one or two
    cages is where writing a cage's cells can be learnt before writing twenty (a one-rule curriculum). The
    puzzle may then have many solutions, which the reading questions do not care about."""
    negative = {c.rule.removesuffix("_negative") for c in puzzle.constraints if c.rule.endswith("_negative")}
    by_rule: dict[str, list[Constraint]] = {}
    for c in puzzle.constraints:
        by_rule.setdefault(c.rule, []).append(c)
    kept: list[Constraint] = []
    for rule, clues in by_rule.items():
        if rule in GLOBAL_KINDS or rule.endswith("_negative") or rule in negative or len(clues) <= 1:
            kept += clues
        else:
            kept += rng.sample(clues, rng.randint(1, min(most, len(clues))))
    return canonical(replace(puzzle, constraints=tuple(kept)))


def kinds_of(puzzle: Puzzle) -> list[str]:
    """The rule types on a puzzle, in rules-answer order, plus 'jigsaw' for irregular regions."""
    out = ["jigsaw"] if puzzle.box is None else []
    for c in puzzle.constraints:
        if c.rule not in out:
            out.append(c.rule)
    return out


__all__ = ["CLASSIC", "SIZES", "VARIANT_KINDS", "canonical", "fewer_clues", "kinds_of", "parse_kinds", "sample_puzzle",
           "shuffled_solution"]
