"""The marks map: a rule's markings written as a raster, one code per cell, and read back into rules.

Why: the default model reads digits in raster order well (each answer token's
place walks over the grid as the image tokens do) but does not turn where a
marking is drawn into "r4c2" (run 14: the kinds of 80% of one-marking renders
named, the cells of none). A map asks for the same thing as the digits do: for
each cell in turn, what is drawn in it or on its right and bottom edges. Code,
not the model, then turns the map into cages, lines, dots and regions.

The map is a third question that only models declaring it are asked
(``vlm_sudoku_marks_map`` in preprocessor_config.json, a list of layers, as the
grid view is declared): after the rules answer, once per layer whose rules it
names, on the same shared prefix. The rules answer keeps deciding which rules
there are; a layer's map replaces the cells of that layer's rules. A real
Qwen2-VL declares nothing and is asked exactly as before.

Every code is a character the default tokenizer keeps as one token (digits,
'.', and the letters K, H, V, X), so a map row is one token per cell as a digits
row is; only a cage sum adds its digits. The layers:

- ``regions`` (irregular regions): 1 a wall on the cell's right, 2 below it, 3 both, '.' neither.
- ``killer``: '.' outside the cages; K in a cage, H if the cage goes on to the right, V if it goes on
  down, X both; a cage sum is written right after the letter of the cell it is printed in.
- the lines (``thermo``, ``arrow``, ``whisper``, ``renban``, ``palindrome``, ``between``): the step to the
  line's next cell as on a number pad (6 right, 2 down, 3 down-right, 1 down-left...), 5 at its last cell,
  '.' off the lines. A thermometer starts at its bulb, an arrow at its circle, other lines at their end
  nearer the top-left (the rules answer's order).
- ``kropki`` and ``xv``: the marks on the cell's right and bottom edges as 3 x right + bottom, where 1 is a
  white dot (X) and 2 a black dot (V); '.' for none.
- ``odd_even``: 1 an odd (shaded circle) cell, 2 an even one, '.' neither.
- ``outside`` (clues outside the grid): a map of n + 2 rows of n + 2 places, the grid and the ring of places
  around it, where every cell of the grid is '.'; a sandwich clue is S and its sum, a little killer clue the
  way its arrow points (DR, DL, UR, UL, one token each) and its sum (two clues at one place joined by '+'),
  any other place '.'.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from ..solver.cells import Cell
from ..solver.constraints.base import Constraint
from ..solver.constraints.cells import Even, Odd
from ..solver.constraints.lines import Between, Palindrome, Renban, Thermo, Whisper
from ..solver.constraints.pairs import XV, Kropki
from ..solver.constraints.sums import Arrow, Killer, LittleKiller, Sandwich
from ..solver.errors import ModelOutputError, PuzzleFormatError
from ..solver.puzzle import Puzzle
from .answers import PartRules, parse_rules_answer, partial_rules_answer, quote

CONFIG_KEY = "vlm_sudoku_marks_map"

LINE_CLASSES = {"thermo": Thermo, "arrow": Arrow, "whisper": Whisper, "renban": Renban, "palindrome": Palindrome,
                "between": Between}
#: The rule types each layer stands for ("regions" stands for irregular regions, not for a rule).
LAYER_RULES: dict[str, tuple[str, ...]] = {
    "regions": (), "killer": ("killer",), **{k: (k,) for k in LINE_CLASSES}, "kropki": ("kropki",), "xv": ("xv",),
    "odd_even": ("odd", "even"), "outside": ("sandwich", "little_killer"),
}
LAYERS = tuple(LAYER_RULES)

NUMPAD = {(-1, -1): "7", (-1, 0): "8", (-1, 1): "9", (0, -1): "4", (0, 1): "6", (1, -1): "1", (1, 0): "2", (1, 1): "3"}
STEP_OF = {v: k for k, v in NUMPAD.items()}
LINE_END = "5"
JOIN_LETTERS = "KHVX"  # index = 1 (joins right) + 2 (joins down)
EDGE_MARKS = {"kropki": {1: ("white", 1), 2: ("black", 2)}, "xv": {1: 10, 2: 5}}
_CLUE = re.compile(r"(S|DR|DL|UR|UL)(\d+)")
_CELL = {"killer": re.compile(r"[.KHVX]\d*"),
         "outside": re.compile(r"\.|(?:S|DR|DL|UR|UL)\d+(?:\+(?:S|DR|DL|UR|UL)\d+)*"),
         "default": re.compile(r".")}
_ALPHABET = {"regions": ".123", "odd_even": ".12", "kropki": ".12345678", "xv": ".12345678",
             **{k: "." + "".join(NUMPAD.values()) + LINE_END for k in LINE_CLASSES}}

Rows = list[list[str]]


def layers_of(puzzle: Puzzle, declared: Iterable[str] = LAYERS, also: Iterable[str] = ()) -> list[str]:
    """The layers of ``declared`` that ``puzzle`` has something on (or that the rule types, or "regions",
    ``also`` names), in LAYERS order."""
    rules = {c.rule for c in puzzle.constraints} | set(also)
    wanted = set(declared)
    return [layer for layer in LAYERS if layer in wanted
            and (puzzle.box is None or layer in rules if layer == "regions" else bool(rules & set(LAYER_RULES[layer])))]


def layer_of(rule: str) -> str | None:
    """The layer whose map holds rules of type ``rule`` (None for rules no map holds)."""
    return next((layer for layer, rules in LAYER_RULES.items() if rule in rules), None)


def map_text(puzzle: Puzzle, layer: str) -> str | None:
    """The map of ``layer`` the model is trained to give, one line per row; None where the puzzle's markings
    have no such map (cells on two lines or cages of one kind, a two-cell arrow bulb, a dot of another value,
    two marks on one edge)."""
    n = puzzle.size
    rows = [["."] * _width(layer, n) for _ in range(_width(layer, n))]
    cons = [c for c in puzzle.constraints if c.rule in LAYER_RULES[layer]]
    if layer == "outside":
        places: dict[Cell, list[str]] = {}
        for con in cons:  # (each at the place its clue is printed: Sandwich.clue, LittleKiller.clue)
            kind = "S" if isinstance(con, Sandwich) else con.direction  # type: ignore[attr-defined]
            places.setdefault(con.clue, []).append(f"{kind}{con.total}")  # type: ignore[attr-defined]
        for (r, c), codes in places.items():
            rows[r + 1][c + 1] = "+".join(sorted(codes))
    elif layer == "regions":
        g = puzzle.regions
        for r in range(n):
            for c in range(n):
                code = (c + 1 < n and g[r][c] != g[r][c + 1]) + 2 * (r + 1 < n and g[r][c] != g[r + 1][c])
                rows[r][c] = str(code) if code else "."
    elif layer == "killer":
        for cage in cons:
            cells = set(cage.cage)  # type: ignore[attr-defined]
            for r, c in cells:
                if rows[r][c] != ".":
                    return None
                rows[r][c] = JOIN_LETTERS[((r, c + 1) in cells) + 2 * ((r + 1, c) in cells)]
            if cage.total is not None:  # type: ignore[attr-defined]
                r, c = min(cells)  # where the renderer prints it: the cage's first cell in reading order
                rows[r][c] += str(cage.total)  # type: ignore[attr-defined]
    elif layer in LINE_CLASSES:
        for con in cons:
            path = _path_of(con)
            if path is None:
                return None
            for k, (r, c) in enumerate(path):
                if rows[r][c] != ".":
                    return None
                rows[r][c] = NUMPAD[(path[k + 1][0] - r, path[k + 1][1] - c)] if k + 1 < len(path) else LINE_END
    elif layer in EDGE_MARKS:
        codes = {value: code for code, value in EDGE_MARKS[layer].items()}
        for con in cons:
            value = (con.color, con.value) if layer == "kropki" else con.total  # type: ignore[attr-defined]
            (r, c), (rr, cc) = sorted((con.a, con.b))  # type: ignore[attr-defined]
            if value not in codes or (rr - r, cc - c) not in ((0, 1), (1, 0)):
                return None
            right, down = divmod(int(rows[r][c]) if rows[r][c] != "." else 0, 3)
            if (right if cc > c else down):  # two marks on one edge
                return None
            rows[r][c] = str(3 * right + down + codes[value] * (3 if cc > c else 1))
    else:  # odd_even
        for con in cons:
            for r, c in con.cells():
                rows[r][c] = "1" if con.rule == "odd" else "2"
    return "\n".join("".join(row) for row in rows)


def _path_of(con: Constraint) -> list[Cell] | None:
    if isinstance(con, Arrow):
        return [*con.bulb, *con.shaft] if len(con.bulb) == 1 else None
    path = _reading_order(con.rule, list(con.line))  # type: ignore[attr-defined]
    steps_ok = all((b[0] - a[0], b[1] - a[1]) in NUMPAD for a, b in zip(path, path[1:]))
    return path if steps_ok else None


def _width(layer: str, n: int) -> int:
    """Rows (and codes a row) of a layer's map: the grid's, or with the ring of places around it."""
    return n + 2 if layer == "outside" else n


def code_rows(text: str, layer: str) -> Rows:
    """The first block of consecutive lines of ``text`` made of ``layer``'s cell codes, each line as its codes
    (spaces and '|' dropped): a map answer's rows, chatter before them skipped."""
    pattern = _CELL.get(layer, _CELL["default"])
    alphabet = _ALPHABET.get(layer)
    rows: Rows = []
    for line in text.splitlines():
        flat = line.replace(" ", "").replace("|", "")
        cells = pattern.findall(flat)
        if bool(flat) and "".join(cells) == flat and (alphabet is None or all(ch in alphabet for ch in cells)):
            rows.append(cells)
        elif rows:
            break
    return rows


def parse_map(text: str, layer: str, size: int) -> Rows:
    """The ``size`` rows of ``size`` cell codes of a map answer. Lines of chatter before the rows are skipped;
    the rows themselves must be consecutive and complete, each cell a code of ``layer``."""
    width = _width(layer, size)
    rows = code_rows(text, layer)
    for k, cells in enumerate(rows[:width]):
        if len(cells) != width:
            raise ModelOutputError(f"row {k + 1} of the model's {layer} map has {len(cells)} cells, "
                                   f"not {width}: {quote(text)}")
    if len(rows) < width:
        raise ModelOutputError(f"the model's {layer} map has {len(rows)} complete row(s) of {width} cells for a "
                               f"{size}x{size} grid: {quote(text)}")
    return rows[:width]


def voted_map(texts: Sequence[str], layer: str) -> str:
    """One map from the same layer's maps of several grid views: each cell's code as most of them write it, the
    first map's where they tie. A view whose rows are not shaped as the first's is left out, and the first map
    is returned as it is when its own rows are not a map (with_maps then says why). Where the cells voted so
    do not read as a map (a line stepping off its cells, two lines into one cell), the first view's own map
    that does is taken instead, and the vote where none does.

    Why: the digits are read from three views at slightly different zooms (grid_view.ZOOMS) because the views'
    misreadings differ; so do their maps'. On run 17, of 181 maps of the few-clue and by-kind renders, 58 + 27
    were exactly right from the first view and 61 + 30 voted from three. A line is one path, though, and cells
    voted from paths that differ can join into none (run 18: ".344", ".669" and ".3.9" voted ".349", a step off
    the line, where the second view was right)."""
    first = code_rows(texts[0], layer)
    if not first:
        return texts[0]
    shape = [len(row) for row in first]
    views = [first, *(rows for rows in (code_rows(t, layer) for t in texts[1:]) if [len(r) for r in rows] == shape)]
    # (Counter keeps the order codes are met in, and most_common keeps it among equal counts: ties go to the first)
    vote = "\n".join("".join(Counter(view[r][c] for view in views).most_common(1)[0][0] for c in range(len(row)))
                      for r, row in enumerate(first))
    size = len(first) - (2 if layer == "outside" else 0)
    return next((text for text in (vote, *texts) if valid_map(text, layer, size)), vote)


def valid_map(text: str, layer: str, size: int) -> bool:
    """Whether ``text`` reads as a ``layer`` map of a ``size`` grid (read_map without its error)."""
    try:
        read_map(text, layer, size)
    except ModelOutputError:
        return False
    return True


def read_map(text: str, layer: str, size: int) -> list[Constraint] | tuple[tuple[int, ...], ...]:
    """A layer's map answer -> its rules (or, for ``regions``, the region of every cell)."""
    rows = parse_map(text, layer, size)
    try:
        if layer == "regions":
            return _regions(rows, size)
        if layer == "killer":
            return _cages(rows, size)
        if layer in LINE_CLASSES:
            return _lines(rows, layer)
        if layer in EDGE_MARKS:
            return _edge_marks(rows, layer, size)
        if layer == "outside":
            return _outside(rows, size)
        odd = tuple((r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "1")
        even = tuple((r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "2")
        return ([Odd(odd)] if odd else []) + ([Even(even)] if even else [])
    except PuzzleFormatError as exc:
        raise ModelOutputError(f"the model's {layer} map is not valid ({exc}): {quote(text)}") from None


def _components(cells: Iterable[Cell], joined: Iterable[tuple[Cell, Cell]]) -> list[list[Cell]]:
    """Groups of ``cells`` connected by ``joined`` pairs, each sorted, in reading order of their first cell."""
    parent = {cell: cell for cell in cells}

    def root(x: Cell) -> Cell:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in joined:
        parent[root(a)] = root(b)
    groups: dict[Cell, list[Cell]] = {}
    for cell in sorted(parent):
        groups.setdefault(root(cell), []).append(cell)
    return sorted(groups.values())


def _regions(rows: Rows, n: int) -> tuple[tuple[int, ...], ...]:
    cells = [(r, c) for r in range(n) for c in range(n)]
    joined = [((r, c), (r, c + 1)) for r, c in cells if c + 1 < n and rows[r][c] not in "13"]
    joined += [((r, c), (r + 1, c)) for r, c in cells if r + 1 < n and rows[r][c] not in "23"]
    label = {cell: k for k, group in enumerate(_components(cells, joined)) for cell in group}
    regions = [[label[(r, c)] for c in range(n)] for r in range(n)]
    return Puzzle.create(n, regions=regions).regions  # checks: n regions of n cells


def _cages(rows: Rows, n: int) -> list[Constraint]:
    caged = {(r, c): code for r, row in enumerate(rows) for c, code in enumerate(row) if code[0] != "."}
    joined = []
    for (r, c), code in caged.items():
        k = JOIN_LETTERS.index(code[0])
        for bit, other in ((1, (r, c + 1)), (2, (r + 1, c))):
            if k & bit:
                if other not in caged:
                    raise PuzzleFormatError(f"the cage at r{r + 1}c{c + 1} goes on to a cell outside the cages")
                joined.append(((r, c), other))
    out: list[Constraint] = []
    for cage in _components(caged, joined):
        sums = [int(caged[cell][1:]) for cell in cage if len(caged[cell]) > 1]
        if len(sums) > 1:
            raise PuzzleFormatError(f"the cage at r{cage[0][0] + 1}c{cage[0][1] + 1} has {len(sums)} sums")
        out.append(Killer._make(cage, sums[0] if sums else None, n))
    return out


def _lines(rows: Rows, layer: str) -> list[Constraint]:
    step = {(r, c): ch for r, row in enumerate(rows) for c, ch in enumerate(row) if ch != "."}
    following: dict[Cell, Cell] = {}
    for (r, c), ch in step.items():
        if ch == LINE_END:
            continue
        dr, dc = STEP_OF[ch]
        nxt = (r + dr, c + dc)
        if nxt not in step:
            raise PuzzleFormatError(f"the line at r{r + 1}c{c + 1} steps off the lines")
        if nxt in following.values():
            raise PuzzleFormatError(f"two lines step into r{nxt[0] + 1}c{nxt[1] + 1}")
        following[(r, c)] = nxt
    starts = sorted(set(step) - set(following.values()))
    out: list[Constraint] = []
    seen: set[Cell] = set()
    for start in starts:
        path = [start]
        while path[-1] in following:
            path.append(following[path[-1]])
        seen.update(path)
        out.append(_line_rule(layer, path))
    if len(seen) != len(step):
        raise PuzzleFormatError("a line closes on itself")
    return out


def _line_rule(layer: str, path: list[Cell]) -> Constraint:
    if len(path) < 2:
        raise PuzzleFormatError(f"the line at r{path[0][0] + 1}c{path[0][1] + 1} has one cell")
    if layer == "arrow":
        return Arrow((path[0],), tuple(path[1:]))
    return LINE_CLASSES[layer](tuple(_reading_order(layer, path)))  # type: ignore[call-arg]


def _reading_order(layer: str, path: list[Cell]) -> list[Cell]:
    """A line that reads the same both ways starts at its end nearer the top-left (the rules answer's order);
    a thermometer keeps its bulb first."""
    return path[::-1] if layer != "thermo" and path[-1] < path[0] else path


def _edge_marks(rows: Rows, layer: str, n: int) -> list[Constraint]:
    out: list[Constraint] = []
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch == ".":
                continue
            right, down = divmod(int(ch), 3)
            for code, other in ((right, (r, c + 1)), (down, (r + 1, c))):
                if not code:
                    continue
                if max(other) >= n:
                    raise PuzzleFormatError(f"a mark on r{r + 1}c{c + 1}'s edge lies outside the grid")
                value = EDGE_MARKS[layer][code]
                out.append(Kropki((r, c), other, *value) if layer == "kropki" else XV((r, c), other, value))  # type: ignore[misc]
    return out


def _outside(rows: Rows, n: int) -> list[Constraint]:
    out: list[Constraint] = []
    for i, row in enumerate(rows):
        for j, code in enumerate(row):
            r, c = i - 1, j - 1
            if code != "." and 0 <= r < n and 0 <= c < n:
                raise PuzzleFormatError(f"a clue lies in the grid's cell r{r + 1}c{c + 1}")
            for kind, total in _CLUE.findall(code):  # (a place may hold several: two arrows from one place)
                if kind != "S":
                    out.append(LittleKiller._make((r, c), kind, int(total), n))
                elif (r in (-1, n)) == (c in (-1, n)):
                    raise PuzzleFormatError(f"a sandwich clue sits at a corner of the grid (r{r + 1}c{c + 1})")
                else:
                    axis, index = ("col", c) if r in (-1, n) else ("row", r)
                    out.append(Sandwich.from_rule({axis: index + 1, "sum": int(total)}, n))
    return out


def with_maps(puzzle: Puzzle, maps: Mapping[str, str], problems: list[str] | None = None) -> Puzzle:
    """The rules answer's puzzle with each mapped layer's rules (or regions) taken from its map.

    A map that is not one, or that shows nothing of a layer the rules answer names (the two answers disagree),
    cannot be trusted. Without ``problems`` that is a ModelOutputError. With it, that layer keeps the rules
    answer's rules, and why goes into ``problems`` (one line each, for the user to see): one layer's bad map
    then costs that layer, not the whole reading, and the solver still says whether the rules hold together."""
    n = puzzle.size
    cons = list(puzzle.constraints)
    for layer, text in maps.items():
        try:
            read = _usable_map(text, layer, n)
        except ModelOutputError as exc:
            if problems is None:
                raise
            problems.append(f"{exc}; the {layer} rules are the rules answer's")
            continue
        if layer == "regions":  # (read_map has checked them: n regions of n cells)
            puzzle = Puzzle.create(n, puzzle.givens, regions=read, constraints=cons, alphabet=puzzle.alphabet)
            continue
        cons = [c for c in cons if c.rule not in LAYER_RULES[layer]] + list(read)  # type: ignore[arg-type]
    return replace(puzzle, constraints=tuple(cons))


def _usable_map(text: str, layer: str, n: int) -> list[Constraint] | tuple[tuple[int, ...], ...]:
    """read_map, and for a layer of rules at least one of them (the rules answer named some)."""
    read = read_map(text, layer, n)
    if layer != "regions" and not read:
        raise ModelOutputError(f"the model's {layer} map shows none, though its rules answer names "
                               f"{'/'.join(LAYER_RULES[layer])} rules: {quote(text)}")
    return read


def rules_with_maps(rules_text: str, maps: Mapping[str, str], problems: list[str] | None = None) -> Puzzle:
    """The rules as vlm-solve takes them: the rules answer's, each mapped layer's from its map (with_maps).

    With ``problems``, a rules answer that does not parse is still read where what fails is a part that maps
    stand in for (answers.partial_rules_answer): a list of rules that breaks off, or rules (or regions) that are
    not valid, each of a layer whose map is usable. The rules that read are kept, those layers come from their
    maps, and a line in ``problems`` says so; after a break it also says that a rule the answer would have
    listed later is not read (the solver then finds the puzzle ambiguous, or solves it without that rule).
    Anything else that is not a rules answer raises ModelOutputError."""
    try:
        puzzle = parse_rules_answer(rules_text)
    except ModelOutputError as broken:
        stand_in = stand_in_reading(rules_text, maps) if problems is not None else None
        if stand_in is None:
            raise
        part, layers = stand_in
        for layer in layers:
            try:
                _usable_map(maps[layer], layer, part.puzzle.size)
            except ModelOutputError as bad:
                raise ModelOutputError(f"{broken}; its {layer} map cannot stand in for those rules ({bad})") from None
        problems.append(f"the model's rules answer {part.why}: the {'/'.join(layers)} rules are its "
                        + ("maps'" if len(layers) > 1 else "map's")
                        + ("; any rule the answer would have listed after the break is not read" if part.cut else ""))
        puzzle = part.puzzle
    return with_maps(puzzle, maps, problems) if maps else puzzle


def stand_in_reading(rules_text: str, layers: Iterable[str]) -> tuple[PartRules, list[str]] | None:
    """What still reads of a rules answer that does not parse (answers.partial_rules_answer), and the layers
    whose maps stand in for the rest; None where nothing reads or some of the rest has no layer among
    ``layers`` (the declared ones, when deciding what to ask; the maps answered, when reading)."""
    part = partial_rules_answer(rules_text)
    if part is None:
        return None
    needed = list(dict.fromkeys(t if t == "regions" else layer_of(t) for t in part.unread))
    available = set(layers)
    if not needed or any(layer not in available for layer in needed):
        return None
    return part, needed  # type: ignore[return-value]


def maps_in(texts: Mapping[str, str]) -> dict[str, str]:
    """The marks-map answers among a reading's answers ("map:<layer>" -> text), by layer."""
    return {q.removeprefix("map:"): text for q, text in texts.items() if q.startswith("map:")}


def map_is_right(text: str, layer: str, truth: Puzzle) -> bool:
    """Whether a layer's map answer says exactly what ``truth`` has on that layer (an evaluation's score of the
    map alone); raises ModelOutputError where it is not a map."""
    read = read_map(text, layer, truth.size)
    if layer == "regions":
        return read == truth.regions
    return sorted(map(repr, read)) == sorted(repr(c) for c in truth.constraints if c.rule in LAYER_RULES[layer])


def declared_layers(raw: Mapping[str, object]) -> tuple[str, ...]:
    """The layers a preprocessor_config.json declares (none without the key)."""
    from .model_config import ModelFolderError

    spec = raw.get(CONFIG_KEY)
    if spec is None:
        return ()
    if not isinstance(spec, list) or not all(isinstance(s, str) and s in LAYERS for s in spec):
        raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} must list layers of {', '.join(LAYERS)}, "
                               f"got {spec!r}")
    return tuple(spec)


def load_layers(folder) -> tuple[str, ...]:
    """The marks-map layers a model or export folder declares."""
    from .preprocess import read_preprocessor_config

    return declared_layers(read_preprocessor_config(folder))


__all__ = ["CONFIG_KEY", "LAYERS", "declared_layers", "layers_of", "load_layers", "map_is_right",
           "map_text", "maps_in", "parse_map", "read_map", "with_maps"]
