"""Seeded puzzle generation: random solutions, variant clues drawn from them, and
givens removed while the solution stays unique.

Everything takes a ``random.Random`` (or a seed) so a puzzle is rebuilt exactly
from its seed; the renderer and the training data build on this. pycosat is
deterministic for a given clause list, so randomness enters through the
seeded givens and the order in which clues are tried.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from .cells import Cell, are_adjacent
from .constraints.base import Constraint
from .constraints.cells import Even, Odd
from .constraints.groups import AntiKing, AntiKnight, DiagonalNegative, DiagonalPositive, DisjointGroups, Windoku
from .constraints.lines import Renban, Thermo, Whisper
from .constraints.pairs import XV, Kropki, KropkiNegative, NonConsecutive, XVNegative, kropki_holds
from .constraints.sums import DIRECTIONS, Arrow, Killer, LittleKiller, Sandwich, diagonal_from
from .errors import PuzzleFormatError, SearchLimit
from .puzzle import Grid, Puzzle
from .solve import SOLVED, solve

#: Propagations one SAT call of the generator may spend: rule sets that need more (some pairs of
#: global rules on 9x9 take minutes) are skipped rather than waited for.
PROP_LIMIT = 20_000_000

#: Rules that restrict the whole grid: the solution must be generated under them.
GLOBAL_KINDS: dict[str, Callable[[], Constraint]] = {
    "diagonal+": DiagonalPositive,
    "diagonal-": DiagonalNegative,
    "antiknight": AntiKnight,
    "antiking": AntiKing,
    "nonconsecutive": NonConsecutive,
    "windoku": Windoku,
    "disjoint": DisjointGroups,
}
KING_STEPS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def _rng(seed: int | random.Random) -> random.Random:
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def random_regions(size: int, rng: random.Random, swaps: int | None = None) -> list[list[int]]:
    """A random jigsaw layout: start from the boxes, then trade border cells between
    neighbouring regions (one each way, so sizes stay n) while both stay connected."""
    from .puzzle import box_regions, default_box

    owner = [list(row) for row in box_regions(size, default_box(size))]
    steps = ((0, 1), (1, 0), (0, -1), (-1, 0))

    def border(g: int, h: int) -> list[Cell]:
        return [(r, c) for r in range(size) for c in range(size) if owner[r][c] == g
                and any(0 <= r + dr < size and 0 <= c + dc < size and owner[r + dr][c + dc] == h for dr, dc in steps)]

    def connected(g: int) -> bool:
        cells = {(r, c) for r in range(size) for c in range(size) if owner[r][c] == g}
        stack, seen = [next(iter(cells))], set()
        while stack:
            r, c = stack.pop()
            if (r, c) in seen:
                continue
            seen.add((r, c))
            stack += [(r + dr, c + dc) for dr, dc in steps if (r + dr, c + dc) in cells]
        return seen == cells

    done = 0
    for _ in range((swaps or 4 * size) * 20):
        if done >= (swaps or 4 * size):
            break
        r, c = rng.randrange(size), rng.randrange(size)
        dr, dc = rng.choice(steps)
        if not (0 <= r + dr < size and 0 <= c + dc < size):
            continue
        g, h = owner[r][c], owner[r + dr][c + dc]
        if g == h:
            continue
        back = [x for x in border(h, g) if x != (r + dr, c + dc)]
        if not back:
            continue
        br_, bc_ = rng.choice(back)
        owner[r][c], owner[br_][bc_] = h, g
        if connected(g) and connected(h):
            done += 1
        else:
            owner[r][c], owner[br_][bc_] = g, h
    return owner


def random_solution(template: Puzzle, rng: random.Random, seeds: int | None = None) -> Grid:
    """A random complete grid obeying ``template``'s regions and constraints.

    Fixes a few random cells to random digits (checking each stays solvable),
    then lets the SAT solver complete the grid.
    """
    n = template.size
    givens = [list(row) for row in template.givens]
    empties = [(r, c) for r in range(n) for c in range(n) if not givens[r][c]]
    rng.shuffle(empties)
    try:
        for r, c in empties[: seeds if seeds is not None else n + 2]:
            for d in rng.sample(range(1, n + 1), n):
                givens[r][c] = d
                if solve(template.with_givens(givens), check_unique=False, prop_limit=PROP_LIMIT).status == SOLVED:
                    break
                givens[r][c] = 0
        result = solve(template.with_givens(givens), check_unique=False, prop_limit=PROP_LIMIT)
    except SearchLimit:
        raise PuzzleFormatError("these rules are too hard to generate a grid for quickly") from None
    if result.status != SOLVED:
        raise PuzzleFormatError("these rules admit no grid at all")
    return result.solutions[0]


# -- clues drawn from a solution --------------------------------------------------


def _walk(start: Cell, n: int, length: int, rng: random.Random, ok: Callable[[list[Cell], Cell], bool],
          blocked: set[Cell], steps=KING_STEPS) -> list[Cell] | None:
    """A random self-avoiding path of ``length`` cells where each step passes ``ok``."""
    path = [start]
    while len(path) < length:
        r, c = path[-1]
        options = [(r + dr, c + dc) for dr, dc in steps
                   if 0 <= r + dr < n and 0 <= c + dc < n and (r + dr, c + dc) not in path
                   and (r + dr, c + dc) not in blocked and ok(path, (r + dr, c + dc))]
        if not options:
            return None
        path.append(rng.choice(options))
    return path


def killer_cages(sol: Grid, rng: random.Random, cover: float = 1.0, max_cage: int = 5) -> list[Constraint]:
    """Random cages of 1..max_cage cells (no repeated digit), sums from the solution."""
    n = len(sol)
    free = {(r, c) for r in range(n) for c in range(n)}
    order = sorted(free)
    rng.shuffle(order)
    cages: list[Constraint] = []
    target = int(cover * n * n)
    used = 0
    for start in order:
        if start not in free or used >= target:
            continue
        size = rng.randint(2, max_cage)
        cage = [start]
        free.discard(start)
        while len(cage) < size:
            options = [(r + dr, c + dc) for r, c in cage for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
                       if (r + dr, c + dc) in free and sol[r + dr][c + dc] not in {sol[a][b] for a, b in cage}]
            if not options:
                break
            nxt = rng.choice(sorted(set(options)))
            cage.append(nxt)
            free.discard(nxt)
        used += len(cage)
        cages.append(Killer(tuple(sorted(cage)), sum(sol[r][c] for r, c in cage)))
    return cages


def _lines(sol: Grid, rng: random.Random, count: int, lengths: tuple[int, int],
           ok: Callable[[list[Cell], Cell], bool], accept: Callable[[list[Cell]], bool] = lambda p: True,
           steps=KING_STEPS, tries: int = 30) -> list[list[Cell]]:
    """Up to ``count`` non-overlapping random paths whose every step passes ``ok`` and that ``accept`` takes."""
    n = len(sol)
    out: list[list[Cell]] = []
    blocked: set[Cell] = set()
    for _ in range(count * tries):
        if len(out) >= count:
            break
        start = (rng.randrange(n), rng.randrange(n))
        if start in blocked:
            continue
        path = _walk(start, n, rng.randint(*lengths), rng, ok, blocked, steps)
        if path and accept(path):
            out.append(path)
            blocked.update(path)
    return out


def thermos(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    rising = lambda p, c: sol[c[0]][c[1]] > sol[p[-1][0]][p[-1][1]]  # noqa: E731
    return [Thermo(tuple(p)) for p in _lines(sol, rng, count, (3, min(6, len(sol))), rising, tries=20)]


def arrows(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    """Bulb, then a shaft whose digits add up to it (the bulb is the path's first cell)."""

    def fits(p: list[Cell], c: Cell) -> bool:
        return sum(sol[a][b] for a, b in p[1:]) + sol[c[0]][c[1]] <= sol[p[0][0]][p[0][1]]

    def adds_up(p: list[Cell]) -> bool:
        return sum(sol[a][b] for a, b in p[1:]) == sol[p[0][0]][p[0][1]]

    paths = _lines(sol, rng, count, (3, 5), fits, adds_up, tries=40)
    return [Arrow((p[0],), tuple(p[1:])) for p in paths]


def whispers(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    gap = (len(sol) + 1) // 2
    apart = lambda p, c: abs(sol[c[0]][c[1]] - sol[p[-1][0]][p[-1][1]]) >= gap  # noqa: E731
    return [Whisper(tuple(p)) for p in _lines(sol, rng, count, (3, 6), apart)]


def renbans(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    def spread_ok(p: list[Cell], c: Cell) -> bool:
        vals = [sol[a][b] for a, b in p] + [sol[c[0]][c[1]]]
        return len(set(vals)) == len(vals) and max(vals) - min(vals) < rng.randint(3, 5)

    def consecutive(p: list[Cell]) -> bool:
        vals = sorted(sol[a][b] for a, b in p)
        return vals[-1] - vals[0] == len(vals) - 1

    paths = _lines(sol, rng, count, (3, 4), spread_ok, consecutive, steps=[(0, 1), (1, 0), (0, -1), (-1, 0)])
    return [Renban(tuple(p)) for p in paths]


def adjacent_marks(sol: Grid, rng: random.Random, keep: float, kind: str) -> list[Constraint]:
    """Kropki dots or XV marks on side-adjacent pairs whose digits qualify; ``keep`` of them."""
    n = len(sol)
    out: list[Constraint] = []
    for r in range(n):
        for c in range(n):
            for rr, cc in ((r, c + 1), (r + 1, c)):
                if rr >= n or cc >= n:
                    continue
                x, y = sol[r][c], sol[rr][cc]
                if kind == "kropki":
                    if kropki_holds("white", 1, x, y):
                        mark: Constraint | None = Kropki((r, c), (rr, cc), "white", 1)
                    elif kropki_holds("black", 2, x, y):
                        mark = Kropki((r, c), (rr, cc), "black", 2)
                    else:
                        mark = None
                else:
                    mark = XV((r, c), (rr, cc), x + y) if x + y in (5, 10) else None
                if mark is not None and rng.random() < keep:
                    out.append(mark)
    return out


def parity_cells(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    n = len(sol)
    cells = rng.sample([(r, c) for r in range(n) for c in range(n)], count)
    odd = tuple(sorted(c for c in cells if sol[c[0]][c[1]] % 2))
    even = tuple(sorted(c for c in cells if not sol[c[0]][c[1]] % 2))
    return ([Odd(odd)] if odd else []) + ([Even(even)] if even else [])


def little_killers(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    n = len(sol)
    clues = [(-1, c) for c in range(n)] + [(n, c) for c in range(n)] + [(r, -1) for r in range(n)] + [(r, n) for r in range(n)]
    options = [(clue, d) for clue in clues for d in DIRECTIONS if len(diagonal_from(clue, d, n)) >= 2]
    rng.shuffle(options)
    out: list[Constraint] = []
    used: set[Cell] = set()
    for clue, d in options:
        if len(out) >= count:
            break
        if clue in used:
            continue
        used.add(clue)
        diag = diagonal_from(clue, d, n)
        out.append(LittleKiller(clue, d, sum(sol[r][c] for r, c in diag), n))
    return out


def sandwiches(sol: Grid, rng: random.Random, count: int) -> list[Constraint]:
    n = len(sol)
    lines = [("row", i) for i in range(n)] + [("col", i) for i in range(n)]
    out: list[Constraint] = []
    for axis, i in rng.sample(lines, min(count, len(lines))):
        vals = list(sol[i]) if axis == "row" else [sol[r][i] for r in range(n)]
        a, b = sorted((vals.index(1), vals.index(n)))
        out.append(Sandwich(axis, i, sum(vals[a + 1 : b])))
    return out


def clues_for(kind: str, sol: Grid, rng: random.Random) -> list[Constraint]:
    """Clues of one rule kind drawn from a finished grid (or the global rule itself)."""
    n = len(sol)
    if kind in GLOBAL_KINDS:
        return [GLOBAL_KINDS[kind]()]
    table: dict[str, Callable[[], list[Constraint]]] = {
        "killer": lambda: killer_cages(sol, rng, cover=rng.choice([1.0, 0.6])),
        "thermo": lambda: thermos(sol, rng, rng.randint(2, 5)),
        "arrow": lambda: arrows(sol, rng, rng.randint(2, 5)),
        "whisper": lambda: whispers(sol, rng, rng.randint(2, 4)),
        "renban": lambda: renbans(sol, rng, rng.randint(2, 4)),
        "kropki": lambda: adjacent_marks(sol, rng, rng.uniform(0.3, 0.8), "kropki"),
        "kropki_negative": lambda: adjacent_marks(sol, rng, 1.0, "kropki") + [KropkiNegative("white"), KropkiNegative("black")],
        "xv": lambda: adjacent_marks(sol, rng, rng.uniform(0.3, 0.8), "xv"),
        "xv_negative": lambda: adjacent_marks(sol, rng, 1.0, "xv") + [XVNegative()],
        "odd_even": lambda: parity_cells(sol, rng, rng.randint(n // 2, n)),
        "little_killer": lambda: little_killers(sol, rng, rng.randint(2, 5)),
        "sandwich": lambda: sandwiches(sol, rng, rng.randint(3, n)),
    }
    if kind not in table:
        raise PuzzleFormatError(f"cannot generate clues of kind {kind!r} (known: {', '.join(sorted([*table, *GLOBAL_KINDS]))})")
    return table[kind]()


GENERATED_KINDS = (
    "killer", "thermo", "arrow", "whisper", "renban", "kropki", "kropki_negative", "xv", "xv_negative",
    "odd_even", "little_killer", "sandwich", *GLOBAL_KINDS,
)


def remove_givens(puzzle: Puzzle, solution: Grid, rng: random.Random, *, min_givens: int = 0,
                  max_checks: int | None = None) -> Puzzle:
    """Take givens away in random order while the solution stays unique.

    Stops at ``min_givens`` givens or after ``max_checks`` uniqueness checks;
    with neither it ends at a minimal puzzle (every remaining given is needed).
    """
    n = puzzle.size
    givens = [list(row) for row in solution]
    cells = [(r, c) for r in range(n) for c in range(n)]
    rng.shuffle(cells)
    count, checks = n * n, 0
    for r, c in cells:
        if count <= min_givens or (max_checks is not None and checks >= max_checks):
            break
        keep = givens[r][c]
        givens[r][c] = 0
        checks += 1
        try:
            unique = solve(puzzle.with_givens(givens), prop_limit=PROP_LIMIT).status == SOLVED
        except SearchLimit:  # too hard to prove either way: keep the given
            unique = False
        if unique:
            count -= 1
        else:
            givens[r][c] = keep
    return puzzle.with_givens(givens)


def generate(
    size: int = 9,
    kinds: Sequence[str] = (),
    *,
    seed: int | random.Random = 0,
    jigsaw: bool = False,
    min_givens: int = 0,
    max_checks: int | None = None,
) -> tuple[Puzzle, Grid]:
    """A puzzle with a unique solution, and that solution.

    >>> puzzle, solution = generate(4, seed=1)
    >>> puzzle.size, len(solution)
    (4, 4)
    """
    rng = _rng(seed)
    regions = random_regions(size, rng) if jigsaw else None
    globals_ = [GLOBAL_KINDS[k]() for k in kinds if k in GLOBAL_KINDS]
    template = Puzzle.create(size, regions=regions, constraints=globals_)
    solution = random_solution(template, rng)
    clues: list[Constraint] = list(globals_)
    for kind in kinds:
        if kind not in GLOBAL_KINDS:
            clues += clues_for(kind, solution, rng)
    puzzle = replace(template, constraints=tuple(clues))
    return remove_givens(puzzle, solution, rng, min_givens=min_givens, max_checks=max_checks), solution
