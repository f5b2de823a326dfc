"""How well a model reads puzzles: grid-exact rate, cell accuracy, rules-exact rate, per data set.

    python -m vlm_sudoku.tools.eval_reader EXPORT_DIR [--sets photos-val,rendered-classic,rendered-variants] [--count 200]
    python -m vlm_sudoku.tools.eval_reader MODEL_DIR --backend torch     # transformers, for comparison

Data sets: the fixed validation split of the newspaper photos (tools/train/photos.py),
the same photos re-taken (photos-val-retaken: --count seeded re-takes, each another crop,
tilt, light and JPEG of one photo), and rendered puzzles from seeds the training never draws. The ONNX backend runs
the product's own runtime; the torch backend runs transformers' generate on the
same prompts. Prints a table and, with --json, one object.

Each reading is scored as the model gave it (grid exact, cell accuracy) and, with
the ONNX backend, after the reading check too (runtime/reading_check.py: a reading
that does not solve uniquely takes the most likely change of a few doubtful
digits that gives one solution), as vlm-solve reports it: grid_exact_checked,
cell_accuracy_checked, how many readings the check changed and how many of those
still had a wrong digit after. The check presumes a puzzle with one solution, so
truth_unique counts the images whose true puzzle has one (the newspaper photos
all do; rendered puzzles mostly do not, and there the check can only hurt; the
rendered-classic-unique set draws classic puzzles that do, as published ones).
Rules are scored over every puzzle (rules_exact) and over those whose every rule is
drawn on the grid (rules_exact_drawn): the others state a rule only in words beside
the grid, which the grid view does not show. rules_types counts the answers that name
the right size, regions (irregular or not) and set of rule types, whatever their
cells: a model that has not learnt to see a marking guesses its type, one that sees
it but misplaces it gets the type right. The rendered-by-kind set draws 9x9 puzzles of
one variant kind each, in turn, and reports both per kind (rules_by_kind); rendered-few-clues
draws them with 1-2 clues of one marking kind. marked_cells_f1 scores where the rules read sit
(the (rule, cell) pairs), beside the same score against the truth turned half round. The rendered sets also
count grid-exact by how large the grid's cells are in the picture (grid_exact_by_cell_px): the renders go down
to a few pixels a cell, and a rate over all of them does not say whether the misreads are the small ones.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import click
from PIL import Image

from ..runtime.answers import parse_digits_answer, parse_rules_answer
from ..runtime.clue_crops import clue_answer, clues_of
from ..runtime.grid_view import ZOOMS
from ..runtime.marks_map import map_is_right, map_text, maps_in, rules_with_maps
from ..runtime.rules_check import WORDS_ONLY, RulesCheck
from ..runtime.text_crops import stated_in, text_answer, with_stated
from ..solver.errors import VlmSudokuError
from ..solver.puzzle import Grid, Puzzle
from ..solver.solve import SOLVED, solve

EVAL_SEED_BASE = 10**12  # training draws seeds below 2**62 from its own stream; these are fixed and listed


class Reader(Protocol):
    def read(self, image: Image.Image, questions: tuple[str, ...]) -> dict[str, str]: ...


@dataclass
class Item:
    name: str
    image: Image.Image
    puzzle: Puzzle  # the truth: givens + rules
    check_rules: bool = True
    cell_px: float | None = None  # the true grid's shortest side over its size, in the picture's pixels
    words: list | None = None  # renders: every word drawn, with its box in the grid's unit square (details["texts"])


#: Upper bounds (pixels a cell, exclusive) of grid_exact_by_cell_px's bins; the last bin has none.
CELL_PX_BINS = (20, 30, 40)
CELL_PX_LABELS = (f"<{CELL_PX_BINS[0]}", *(f"{a}-{b}" for a, b in zip(CELL_PX_BINS, CELL_PX_BINS[1:])),
                  f">={CELL_PX_BINS[-1]}")


def cell_px_bin(cell_px: float) -> str:
    """The label of the bin a cell size falls in: '<20', '20-30', '30-40', '>=40'."""
    return CELL_PX_LABELS[sum(cell_px >= high for high in CELL_PX_BINS)]


def grid_cell_px(corners: tuple, size: int) -> float:
    """The shortest side of a grid (corners TL, TR, BR, BL) over its size: a tilted or foreshortened grid is
    as hard to read as its narrowest cells."""
    return min(math.dist(corners[i], corners[(i + 1) % 4]) for i in range(4)) / size


@dataclass
class Score:
    images: int = 0
    grid_exact: int = 0
    cells: int = 0
    cells_right: int = 0
    rules_checked: int = 0
    rules_exact: int = 0
    rules_drawn: int = 0  # puzzles whose every rule is drawn on the grid (none only stated in words beside it)
    rules_drawn_exact: int = 0
    rules_types: int = 0  # answers with the right size, regions kind and set of rule types
    marked: int = 0  # puzzles with rules drawn on particular cells (cages, lines, dots, shading...)
    marked_f1: float = 0.0  # sum over those of the F1 of the read (rule, cell) pairs against the truth's ...
    marked_f1_rotated: float = 0.0  # ... and against the truth turned half round: the same kinds and counts elsewhere
    by_kind: dict = field(default_factory=dict)  # kinds -> [puzzles, types right, exact]
    by_cell_px: dict = field(default_factory=dict)  # cell_px_bin -> [images, grid exact as read]
    # the rules given in words only (rules_check.WORDS_ONLY) a truth has -> those the reading names, where either has
    # one: whether they are read from the words or named from priors (a truth's rule read as another)
    words: Counter = field(default_factory=Counter)
    # models that declare a marks map (runtime/marks_map.py): the rules answer's own rules, without the maps ...
    rules_exact_json: int = 0
    rules_types_json: int = 0
    by_layer: dict = field(default_factory=dict)  # ... and per layer asked: [maps, maps exactly the truth's layer]
    unreadable: int = 0
    confusion: Counter = field(default_factory=Counter)  # (true, read) symbol pairs that differ
    seconds: float = 0.0
    checked: bool = False  # scored after the reading check too (the fields below)
    grid_exact_checked: int = 0
    cells_right_checked: int = 0
    corrected: int = 0  # readings the check changed
    corrected_wrong: int = 0  # ... that still had a wrong digit after
    truth_unique: int = 0  # images whose true puzzle has exactly one solution
    rules_left_out: int = 0  # readings the rules check solved without a rule type (runtime/rules_check.py) ...
    rules_left_out_right: int = 0  # ... of a type the true puzzle does not have
    rules_replaced: int = 0  # readings the rules check solved with a words-only rule taken for another ...
    rules_replaced_right: int = 0  # ... the one taken being the true puzzle's and the one read not
    rules_exact_checked: int = 0  # readings with the truth's rules after the rules check (what vlm-solve reports)
    check_seconds: float = 0.0
    misread: list = field(default_factory=list)  # per image with a wrong or unreadable digit: name, what went wrong
    # models that declare clue crops (runtime/clue_crops.py): the printed numbers asked where the truth prints one,
    # those the crop read right, and those the voted map itself had right ...
    clues: int = 0
    clues_right: int = 0
    clues_map_right: int = 0
    # ... and the readings that asked any: their rules exact with the crops' numbers, and with the maps' own
    clue_readings: int = 0
    clue_readings_exact: int = 0
    clue_readings_exact_without: int = 0
    # models that declare text crops (runtime/text_crops.py), on renders: the lines asked and those answered with
    # exactly the words-only rules their words state, and the same for the lines that state one
    text_lines: int = 0
    text_lines_right: int = 0
    stating_lines: int = 0
    stating_lines_right: int = 0

    def row(self, name: str) -> dict:
        images = max(1, self.images)
        checked = self.checked or None  # None: this backend gives no alternatives, no check ran
        return {
            "set": name, "images": self.images,
            "grid_exact": self.grid_exact / images,
            "cell_accuracy": self.cells_right / max(1, self.cells),
            "grid_exact_checked": checked and self.grid_exact_checked / images,
            "cell_accuracy_checked": checked and self.cells_right_checked / max(1, self.cells),
            "corrected": checked and self.corrected,
            "corrected_wrong": checked and self.corrected_wrong,
            "truth_unique": self.truth_unique,
            "rules_left_out": checked and self.rules_left_out,
            "rules_left_out_right": checked and self.rules_left_out_right,
            "rules_replaced": checked and self.rules_replaced,
            "rules_replaced_right": checked and self.rules_replaced_right,
            "rules_exact_checked": (self.rules_exact_checked / self.rules_checked
                                    if self.checked and self.rules_checked else None),
            "rules_exact": self.rules_exact / max(1, self.rules_checked) if self.rules_checked else None,
            "rules_drawn": self.rules_drawn,
            "rules_exact_drawn": self.rules_drawn_exact / self.rules_drawn if self.rules_drawn else None,
            "rules_types": self.rules_types / self.rules_checked if self.rules_checked else None,
            "marked": self.marked,
            "marked_cells_f1": self.marked_f1 / self.marked if self.marked else None,
            "marked_cells_f1_rotated": self.marked_f1_rotated / self.marked if self.marked else None,
            "rules_by_kind": {k: {"images": n, "types": t / n, "exact": e / n}
                              for k, (n, t, e) in sorted(self.by_kind.items())},
            "grid_exact_by_cell_px": {k: {"images": self.by_cell_px[k][0],
                                          "grid_exact": self.by_cell_px[k][1] / self.by_cell_px[k][0]}
                                      for k in CELL_PX_LABELS if k in self.by_cell_px},
            "rules_exact_without_maps": (self.rules_exact_json / self.rules_checked
                                         if self.by_layer and self.rules_checked else None),
            "rules_types_without_maps": (self.rules_types_json / self.rules_checked
                                         if self.by_layer and self.rules_checked else None),
            "maps_by_layer": {k: {"maps": n, "exact": e / n} for k, (n, e) in sorted(self.by_layer.items())},
            "words_only": {f"{t} -> {r}": k for (t, r), k in sorted(self.words.items())},
            "unreadable": self.unreadable,
            "top_confusions": [f"{t}->{r} x{k}" for (t, r), k in self.confusion.most_common(8)],
            "seconds_per_image": self.seconds / images,
            "check_seconds_per_image": checked and self.check_seconds / images,
            "clues": {"asked": self.clues, "crop_right": self.clues_right, "map_right": self.clues_map_right,
                      "readings": self.clue_readings, "rules_exact": self.clue_readings_exact,
                      "rules_exact_without_crops": self.clue_readings_exact_without} if self.clue_readings else None,
            "text_crops": {"lines": self.text_lines, "right": self.text_lines_right, "stating": self.stating_lines,
                           "stating_right": self.stating_lines_right} if self.text_lines else None,
            "misread": self.misread,
        }


def same_rule_types(a: Puzzle, b: Puzzle) -> bool:
    """Same size, both irregular or both boxed, and the same set of rule types (cells and sums aside)."""
    return (a.size, a.box is None) == (b.size, b.box is None) and {c.rule for c in a.constraints} == {
        c.rule for c in b.constraints}


def same_rules(a: Puzzle, b: Puzzle) -> bool:
    return (a.size, a.regions, a.box) == (b.size, b.regions, b.box) and sorted(map(repr, a.constraints)) == sorted(
        map(repr, b.constraints))


def score_item(item: Item, answers: dict[str, str], score: Score, checked: Grid | None = None,
               read: Grid | None = None) -> bool | None:
    """Score one reading; ``checked``: the givens after the reading check when it changed them (None: as read);
    ``read``: the givens as the pipeline read them (its views combined), else parsed from the digits answer. Returns
    whether the rules were read exactly (None where the item's rules are not scored)."""
    truth = item.puzzle
    n = truth.size
    score.images += 1
    score.truth_unique += solve(truth).status == SOLVED
    sym = truth.alphabet.symbol
    if read is None:
        try:
            read = parse_digits_answer(answers["digits"], n)
        except VlmSudokuError as exc:
            score.unreadable += 1
            score.misread.append({"image": item.name, "unreadable": str(exc)})
    score.cells += n * n
    exact = False
    if read is not None:
        right = sum(read[r][c] == truth.givens[r][c] for r in range(n) for c in range(n))
        score.cells_right += right
        exact = right == n * n
        score.grid_exact += exact
        wrong = [(r, c) for r in range(n) for c in range(n) if read[r][c] != truth.givens[r][c]]
        for r, c in wrong:
            score.confusion[(sym(truth.givens[r][c]), sym(read[r][c]))] += 1
        if wrong:
            score.misread.append({"image": item.name, "cells": [f"r{r + 1}c{c + 1} {sym(truth.givens[r][c])}->"
                                                                f"{sym(read[r][c])}" for r, c in wrong]})
        after = read if checked is None else checked
        right = sum(after[r][c] == truth.givens[r][c] for r in range(n) for c in range(n))
        score.cells_right_checked += right
        score.grid_exact_checked += right == n * n
        if checked is not None and checked != read:
            score.corrected += 1
            score.corrected_wrong += right != n * n
    if item.cell_px is not None:
        tally = score.by_cell_px.setdefault(cell_px_bin(item.cell_px), [0, 0])
        tally[0] += 1
        tally[1] += exact
    if item.check_rules and "rules" in answers:
        score.rules_checked += 1
        read_rules = json_rules = None
        maps = maps_in(answers)
        try:
            json_rules = parse_rules_answer(answers["rules"])  # the rules answer alone ...
        except VlmSudokuError:
            pass
        try:  # ... and with the maps and the lines of text, as vlm-solve
            read_rules = with_stated(rules_with_maps(answers["rules"], maps, []), stated_in(answers))
        except VlmSudokuError:
            pass
        same, types = _rules_scores(read_rules, truth)
        json_same, json_types = _rules_scores(json_rules, truth)
        for layer, text in maps.items():
            tally = score.by_layer.setdefault(layer, [0, 0])
            tally[0] += 1
            try:
                tally[1] += map_is_right(text, layer, truth)
            except VlmSudokuError:
                pass
        score.rules_exact_json += json_same
        score.rules_types_json += json_types
        truth_marked = marked_cells(truth)
        if truth_marked:
            got = marked_cells(read_rules) if read_rules is not None else set()
            score.marked += 1
            score.marked_f1 += f1(got, truth_marked)
            score.marked_f1_rotated += f1(got, {(rule, (n - 1 - r, n - 1 - c)) for rule, (r, c) in truth_marked})
        score.rules_exact += same
        score.rules_types += types
        said, read_said = words_only(truth), words_only(read_rules) if read_rules is not None else "unreadable"
        if said != "none" or read_said != "none":
            score.words[(said, read_said)] += 1
        from .render.puzzles import kinds_of

        tally = score.by_kind.setdefault("+".join(kinds_of(truth)) or "classic", [0, 0, 0])
        tally[0] += 1
        tally[1] += types
        tally[2] += same
        if rules_drawn(truth):
            score.rules_drawn += 1
            score.rules_drawn_exact += same
        return same
    return None


def words_only(puzzle: Puzzle) -> str:
    """The rules a puzzle gives in words only (WORDS_ONLY), '+'-joined in that order, or 'none'."""
    rules = {c.rule for c in puzzle.constraints}
    return "+".join(w for w in WORDS_ONLY if w in rules) or "none"


def score_clues(reading: Any, truth: Puzzle, score: Score) -> None:
    """Tally a reading's clue crops (runtime/clue_crops.py) against the truth: per printed number, whether the
    crop's answer and the voted map's own number are right; per reading, its rules with and without the crops."""
    voted = reading.voted_maps()
    for layer, read in reading.clues.items():
        text = map_text(truth, layer)
        true = {(c.row, c.col): c.number for c in clues_of(text, layer)} if text else {}
        own = {(c.row, c.col): c.number for c in clues_of(voted.get(layer, ""), layer)}
        for place, answer in read.items():
            if place in true:
                score.clues += 1
                score.clues_right += clue_answer(answer) == true[place]
                score.clues_map_right += own.get(place) == true[place]
    texts = reading.texts()
    exact = []
    for maps in (reading.maps(), voted):
        try:
            exact.append(same_rules(rules_with_maps(texts["rules"], maps, []), truth))
        except VlmSudokuError:
            exact.append(False)
    score.clue_readings += 1
    score.clue_readings_exact += exact[0]
    score.clue_readings_exact_without += exact[1]


def score_rules_check(ruled: RulesCheck | None, same: bool | None, truth: Puzzle, score: Score) -> None:
    """Tally what the rules check (runtime/rules_check.py) did to a reading whose rules were read exactly or not
    (``same``; None where they are not scored): a rule type left out or replaced, whether rightly, and the rules
    exact after it, which is what vlm-solve reports."""
    true_rules = {c.rule for c in truth.constraints}
    if ruled is not None and ruled.instead is None:
        score.rules_left_out += 1
        score.rules_left_out_right += ruled.dropped not in true_rules
    elif ruled is not None:
        score.rules_replaced += 1
        score.rules_replaced_right += ruled.instead in true_rules and ruled.dropped not in true_rules
    if same is not None:
        score.rules_exact_checked += same if ruled is None else same_rules(ruled.puzzle, truth)


def score_lines(reading: Any, words: list, score: Score) -> None:
    """Tally a reading's text crops (runtime/text_crops.py) against what the words drawn in each line state
    (tools/train/data.py line_rules, the drill's own labels): an answer that is not one counts as wrong."""
    from .train.data import line_rules

    for line, answer in reading.lines:
        truth, said = set(line_rules(line.box, words)), text_answer(answer)
        right = said is not None and set(said) == truth
        score.text_lines += 1
        score.text_lines_right += right
        if truth:
            score.stating_lines += 1
            score.stating_lines_right += right


def _rules_scores(read: Puzzle | None, truth: Puzzle) -> tuple[bool, bool]:
    """(exactly the truth's rules, the truth's rule types) of a reading; both False for none."""
    return (same_rules(read, truth), same_rule_types(read, truth)) if read is not None else (False, False)


def marked_cells(puzzle: Puzzle) -> set[tuple[str, tuple[int, int]]]:
    """(rule, cell) for every cell a rule is drawn on (Constraint.cells: cages, lines, dots, shading).

    Why: rules_exact is 0 for every such kind so far, so it cannot show a model starting to put the markings
    in their places; the share of marked cells it puts right can, and against the truth turned half round (the
    same kinds and counts, elsewhere) it says whether that share is more than kinds and counts alone give."""
    return {(c.rule, (r, col)) for c in puzzle.constraints for r, col in c.cells()}


def f1(got: set, truth: set) -> float:
    return 2 * len(got & truth) / (len(got) + len(truth)) if got or truth else 1.0


def rules_drawn(puzzle: Puzzle) -> bool:
    """Whether every rule of ``puzzle`` shows on the grid itself. The renderer states the others (anti-king,
    non-consecutive...: render.draw.UNMARKED) in words beside the grid, which the grid view crops away, so a
    grid-view model can only read the rules of these puzzles: rules_exact_drawn is its measure."""
    from .render.draw import UNMARKED

    return not any(isinstance(c, UNMARKED) for c in puzzle.constraints)


def _validation_photos(folder: Path | None) -> list:
    from .train.photos import DEFAULT_DIR, load_photos, split

    return split(load_photos(folder or DEFAULT_DIR))[1]


def photo_items(count: int | None = None, folder: Path | None = None) -> Iterator[Item]:
    from ..runtime.image_io import load_image

    for p in _validation_photos(folder)[:count]:
        yield Item(p.path.name, load_image(p.path), p.puzzle)


def retaken_photo_items(count: int, folder: Path | None = None) -> Iterator[Item]:
    """``count`` re-takes of the validation photos, the photos in turn (seeded: the same images every run).

    Why: 32 photos of 12 puzzles measure a reading rate in steps of 3%, and the project is judged on other
    photos of the same kind. The same photos re-taken with another crop, tilt, light and JPEG (the training's
    photo augmentation, tools/train/photos.py) show how much of a rate holds when the picture changes.
    """
    from .train.photos import augment

    val = _validation_photos(folder)
    for i in range(count):
        photo = val[i % len(val)]
        image = augment(photo, random.Random(EVAL_SEED_BASE + 3 * 10**6 + i))
        yield Item(f"{photo.path.name}#{i // len(val)}", image, photo.puzzle)


def rendered_item(seed: int, r: Any) -> Item:
    """The item of a render (tools/render ``Rendered``) drawn from ``seed``: its puzzle, the size of its cells and
    the words it drew, which every rendered set scores."""
    return Item(f"seed{seed}", r.image, r.puzzle, cell_px=grid_cell_px(r.corners, r.puzzle.size),
                words=r.details.get("texts"))


def rendered_items(kinds: str, count: int, sizes: tuple[int, ...]) -> Iterator[Item]:
    from .render import sample

    for i in range(count):
        r = sample(EVAL_SEED_BASE + i, sizes=sizes, kinds=kinds)
        yield rendered_item(EVAL_SEED_BASE + i, r)


def by_kind_items(count: int) -> Iterator[Item]:
    """9x9 puzzles of one variant kind each, the kinds in turn (their own seeds, after the other sets')."""
    from .render import sample

    kinds = _variant_kinds()
    for i in range(count):
        seed = EVAL_SEED_BASE + 10**6 + i
        r = sample(seed, sizes=(9,), kinds=kinds[i % len(kinds)])
        yield rendered_item(seed, r)


def few_clue_items(count: int) -> Iterator[Item]:
    """9x9 puzzles of one marking kind each (the kinds whose rules sit on cells, in turn) cut to 1-2 clues of
    it (render.puzzles.fewer_clues, the training's one-rule curriculum), on their own seeds.

    Why: where a puzzle has one or two cages, lines or dots, writing their cells is the whole task, so this set
    (with marked_cells_f1) shows whether a model has begun to place markings before it reads full puzzles."""
    from .render import render
    from .render.puzzles import fewer_clues, sample_puzzle
    from ..solver.generate import GLOBAL_KINDS

    kinds = [k for k in _variant_kinds() if k not in GLOBAL_KINDS and not k.endswith("_negative")]
    for i in range(count):
        seed = EVAL_SEED_BASE + 4 * 10**6 + i
        rng = random.Random(seed)
        puzzle, _solution = sample_puzzle(rng, sizes=(9,), kinds=(kinds[i % len(kinds)],))
        puzzle = fewer_clues(puzzle, rng)
        r = render(puzzle, rng)
        yield rendered_item(seed, r)


def unique_classic_items(count: int) -> Iterator[Item]:
    """Classic 9x9 puzzles as they are published, with one solution and 24-36 givens, drawn as the rendered-classic
    set draws its pictures (each on its own seed; 61 of the first 400 with irregular regions, as rendered-classic
    draws them).

    Why: the renderer's training puzzles keep a random share of the solution as givens, so only 27 of the 400
    rendered-classic puzzles have one solution, and on the others the reading check (runtime/reading_check.py),
    which vlm-solve runs on every reading, has nothing to go by. A newspaper or app puzzle always has one; this set
    scores what a user gets from such a puzzle: the reading as the model gave it and after the check."""
    from .render import render
    from .render.puzzles import sample_puzzle
    from ..solver.generate import remove_givens

    for i in range(count):
        seed = EVAL_SEED_BASE + 5 * 10**6 + i
        rng = random.Random(seed)
        template, solution = sample_puzzle(rng, sizes=(9,))
        puzzle = remove_givens(template, solution, rng, min_givens=rng.randint(24, 36))
        r = render(puzzle, rng)
        yield rendered_item(seed, r)


SET_NOTES = {  # what each set is, in the words a reader of a table needs
    "photos-val": "the 32 validation photos: 12 newspaper puzzles never trained on",
    "photos-val-retaken": "seeded re-takes of those photos, each another crop, tilt, light and JPEG",
    "rendered-classic": "classic 9x9 renders from seeds the training never draws",
    "rendered-classic-unique": "classic 9x9 renders of puzzles with one solution and 24-36 givens, as published",
    "rendered-classic-all-sizes": "classic 4x4, 6x6, 9x9 and 16x16 renders",
    "rendered-variants": "renders of 4x4 to 16x16 puzzles of every variant kind",
    "rendered-by-kind": "9x9 renders of one variant kind each, the kinds in turn",
    "rendered-few-clues": "9x9 renders with 1-2 clues of one marking kind each (cages, lines, dots, shading)",
}

SETS: dict[str, Callable[[int], Iterator[Item]]] = {
    "photos-val": lambda n: photo_items(None),
    "photos-val-retaken": retaken_photo_items,
    "rendered-classic": lambda n: rendered_items("classic", n, (9,)),
    "rendered-classic-unique": unique_classic_items,
    "rendered-classic-all-sizes": lambda n: rendered_items("classic", n, (4, 6, 9, 16)),
    "rendered-variants": lambda n: rendered_items(",".join(_variant_kinds()), n, (4, 6, 9, 16)),
    "rendered-by-kind": by_kind_items,
    "rendered-few-clues": few_clue_items,
}


def _variant_kinds() -> tuple[str, ...]:
    from .render.puzzles import VARIANT_KINDS

    return VARIANT_KINDS


def settled_givens(reader: Any, reading: Any, size: int) -> tuple[Grid | None, Grid | None, RulesCheck | None]:
    """The givens vlm-solve takes from ``reading`` (Pipeline.settle): as read (every view's digits combined)
    and, when the reading check changed them, after it (else None); and what the rules check changed (its
    RulesCheck, else None). (None, None, None) where that cannot run (an unreadable answer, a size other than the
    truth's): the answer is then scored as parsed."""
    from ..runtime.pipeline import Outcome

    out = Outcome("")
    try:
        reader.settle(reading, out)
    except VlmSudokuError:
        return None, None, None
    read = out.read_puzzle
    if read is None or read.size != size:
        return None, None, None
    corrected = out.check is not None and out.check.corrected
    return read.givens, out.check.puzzle.givens if corrected else None, out.rules_check


def evaluate(reader: Reader, sets: list[str], count: int, progress: bool = True) -> list[dict]:
    # the product's own pipeline with its reading check on: score the readings after the check too
    check = bool(getattr(reader, "check_reading", False)) and hasattr(reader, "engine")
    rows = []
    for name in sets:
        score = Score(checked=check)
        items = list(SETS[name](count))
        with click.progressbar(items, label=name, file=sys.stderr) if progress else _nullbar(items) as bar:
            for item in bar:
                t = time.perf_counter()
                read = checked = ruled = None
                if check:
                    reading = reader.read_image(item.image, ("rules", "digits"))  # type: ignore[attr-defined]
                    answers = {**reading.texts(), **{f"map:{k}": v for k, v in reading.maps().items()}}  # (voted)
                    score.seconds += time.perf_counter() - t
                    t = time.perf_counter()
                    read, checked, ruled = settled_givens(reader, reading, item.puzzle.size)
                    if reading.clues:
                        score_clues(reading, item.puzzle, score)
                    if reading.lines and item.words is not None:
                        score_lines(reading, item.words, score)
                    score.check_seconds += time.perf_counter() - t
                else:
                    answers = reader.read(item.image, ("rules", "digits"))
                    score.seconds += time.perf_counter() - t
                same = score_item(item, answers, score, checked, read)
                if check:
                    score_rules_check(ruled, same, item.puzzle, score)
        rows.append(score.row(name))
    return rows


class _nullbar:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *exc):
        return False


def table(rows: list[dict]) -> str:
    lines = ["| data set | images | grid exact | cell accuracy | grid exact checked | cell accuracy checked | "
             "corrected (wrong) | truth unique | rules exact | rules exact, drawn on the grid | rule types right | "
             "marked cells F1 (turned round) | "
             "unreadable | s/image | top confusions (true->read) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        rules = "-" if r["rules_exact"] is None else f"{100 * r['rules_exact']:.1f}%"
        drawn = "-" if r["rules_exact_drawn"] is None else f"{100 * r['rules_exact_drawn']:.1f}% of {r['rules_drawn']}"
        types = "-" if r["rules_types"] is None else f"{100 * r['rules_types']:.1f}%"
        marked = ("-" if r.get("marked_cells_f1") is None else
                  f"{r['marked_cells_f1']:.2f} ({r['marked_cells_f1_rotated']:.2f}) of {r['marked']}")
        checked = ("- | - | -" if r["grid_exact_checked"] is None else
                   f"{100 * r['grid_exact_checked']:.1f}% | {100 * r['cell_accuracy_checked']:.2f}% | "
                   f"{r['corrected']} ({r['corrected_wrong']})")
        lines.append(f"| {r['set']} | {r['images']} | {100 * r['grid_exact']:.1f}% | {100 * r['cell_accuracy']:.2f}% | "
                     f"{checked} | {r['truth_unique']} | {rules} | {drawn} | {types} | {marked} | {r['unreadable']} | "
                     f"{r['seconds_per_image']:.2f} | {', '.join(r['top_confusions'][:5])} |")
    left_out = [f"{r['set']} {r['rules_left_out']} ({r['rules_left_out_right']} not in the truth)"
                for r in rows if r.get("rules_left_out")]
    if left_out:
        lines += ["", "rules check: readings solved without a rule type the model named: " + ", ".join(left_out)]
    replaced = [f"{r['set']} {r['rules_replaced']} ({r['rules_replaced_right']} right)"
                for r in rows if r.get("rules_replaced")]
    if replaced:
        lines += ["", "rules check: readings solved with a rule given in words taken for another: " + ", ".join(replaced)]
    if left_out or replaced:
        after = [f"{r['set']} {100 * r['rules_exact_checked']:.1f}%" for r in rows
                 if r.get("rules_left_out") or r.get("rules_replaced")]
        lines += ["", "rules exact after the rules check (as vlm-solve reports them): " + ", ".join(after)]
    for r in rows:
        if r.get("maps_by_layer"):
            lines += ["", f"{r['set']}: marks maps (without them: rules exact {100 * r['rules_exact_without_maps']:.1f}%, "
                          f"rule types right {100 * r['rules_types_without_maps']:.1f}%)", "",
                      "| layer | maps | exactly right |",
                      "|---|---:|---:|"]
            lines += [f"| {k} | {v['maps']} | {100 * v['exact']:.0f}% |" for k, v in r["maps_by_layer"].items()]
    for r in rows:
        if r.get("clues"):
            c = r["clues"]
            lines += ["", f"{r['set']}: clue crops: {c['crop_right']} of {c['asked']} printed numbers read right "
                          f"(the maps' own: {c['map_right']}); rules exact {c['rules_exact']} of {c['readings']} "
                          f"readings with a crop ({c['rules_exact_without_crops']} without the crops)"]
    for r in rows:
        if r.get("text_crops"):
            t = r["text_crops"]
            lines += ["", f"{r['set']}: text crops: {t['right']} of {t['lines']} lines answered with the rules their "
                          f"words state ({t['stating_right']} of the {t['stating']} that state one)"]
    for r in rows:
        if (line := cell_px_line(r)):
            lines += ["", line]
    for r in rows:
        if r.get("words_only"):
            lines += ["", f"{r['set']}: rules given in words only, as read", "", "| in the picture | read as | images |",
                      "|---|---|---:|"]
            lines += [f"| {pair.split(' -> ')[0]} | {pair.split(' -> ')[1]} | {k} |" for pair, k in r["words_only"].items()]
    for r in rows:
        if r["set"] == "rendered-by-kind" and r["rules_by_kind"]:
            lines += ["", f"{r['set']}: rules per kind", "", "| kinds | images | rule types right | rules exact |",
                      "|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['images']} | {100 * v['types']:.0f}% | {100 * v['exact']:.0f}% |"
                      for k, v in r["rules_by_kind"].items()]
    return "\n".join(lines)


@click.command()
@click.argument("model", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--backend", type=click.Choice(["onnx", "torch"]), default="onnx", show_default=True)
@click.option("--sets", default="photos-val,rendered-classic,rendered-variants", show_default=True)
@click.option("--count", default=200, show_default=True, help="Images per rendered or re-taken set.")
@click.option("--provider", default="auto", show_default=True, help="onnx backend: cpu, cuda, tensorrt or auto.")
@click.option("--views", type=click.IntRange(1, len(ZOOMS)), default=len(ZOOMS), show_default=True,
              help="onnx backend: grid views the digits are read from, as vlm-solve --views.")
@click.option("--misread", is_flag=True, help="After the table, each image read with a wrong digit: its cells "
                                              "(true->read), or why the answer was unreadable (--json has them always).")
@click.option("--json", "as_json", is_flag=True)
def main(model: Path, backend: str, sets: str, count: int, provider: str, views: int, misread: bool,
         as_json: bool) -> None:
    """Score a model's reading of puzzle images."""
    names = [s.strip() for s in sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        raise click.BadParameter(f"unknown set(s) {unknown}; known: {', '.join(SETS)}", param_hint="--sets")
    if backend == "torch":
        from ..export.torch_backend import TorchPipeline

        reader: Reader = TorchPipeline(model)
    else:
        from ..runtime.pipeline import Pipeline

        reader = Pipeline.load(model, provider=provider, views=views)
    rows = evaluate(reader, names, count)
    click.echo(json.dumps(rows) if as_json else table(rows) + ("\n\n" + misread_lines(rows) if misread else ""))


def cell_px_line(row: dict) -> str:
    """'SET: grids read exactly, by the grid's cell size in the picture: <20 px 3 of 9, ...', or '' for a row
    without the tally (photos, rows of older runs)."""
    bins = row.get("grid_exact_by_cell_px")
    if not bins:
        return ""
    counts = ", ".join(f"{k} px {round(v['grid_exact'] * v['images'])} of {v['images']}" for k, v in bins.items())
    return f"{row['set']}: grids read exactly, by the grid's cell size in the picture: {counts}"


def misread_lines(rows: list[dict]) -> str:
    """One line per image read with a wrong digit: what is left to fix, by name (a render's name is its seed)."""
    lines = []
    for r in rows:
        for m in r["misread"]:
            what = f"unreadable: {m['unreadable']}" if "unreadable" in m else ", ".join(m["cells"])
            lines.append(f"{r['set']} {m['image']}: {what}")
    return "\n".join(lines) or "no image read with a wrong digit"


if __name__ == "__main__":
    main()
