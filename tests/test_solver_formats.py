"""Grid strings, the compact rules JSON and f-puzzles: reading, writing, and the errors."""

from __future__ import annotations

import json
import re

import pytest

from vlm_sudoku.solver import (
    Puzzle,
    PuzzleFormatError,
    UnknownConstraint,
    dumps_rules,
    loads_rules,
    parse_grid,
    read_fpuzzles,
    read_rules,
    solve,
    write_fpuzzles,
)
from vlm_sudoku.solver.generate import GENERATED_KINDS, generate
from vlm_sudoku.solver.grid_text import format_grid, pretty_grid

from .paths import PUZZLES, ROOT

NO_4x4_GRID = {"antiking", "nonconsecutive"}  # no 4x4 Sudoku obeys these
SCHEMA = json.loads((ROOT / "solver" / "rules.schema.json").read_text())


@pytest.mark.parametrize("length, size", [(16, 4), (36, 6), (81, 9), (256, 16)])
def test_grid_sizes(length: int, size: int) -> None:
    assert parse_grid("." * length).size == size


def test_grid_accepts_zero_blanks_and_pretty_layouts() -> None:
    p = parse_grid("4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........")
    q = parse_grid(pretty_grid(p.givens, p))
    assert q == p
    assert parse_grid(p.format_grid().replace(".", "0")) == p


@pytest.mark.parametrize(
    "text, message",
    [
        ("123", "needs 16, 36, 81 or 256 symbols"),
        ("." * 80, "got 80"),
        ("." * 49, "7x7 is not a supported size"),
        ("x" + "." * 80, "row 1, column 1: symbol 'x' is not allowed"),
        ("." * 10 + "A" + "." * 70, "row 2, column 2: symbol 'A' is not allowed"),
        ("5" + "." * 15, "symbol '5' is not allowed in a 4x4"),
        ("", "empty"),
    ],
)
def test_bad_grid_strings_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PuzzleFormatError, match=re.escape(message)):
        parse_grid(text)


@pytest.mark.parametrize("kind", sorted(NO_4x4_GRID))
def test_rules_no_4x4_grid_obeys(kind: str) -> None:
    with pytest.raises(PuzzleFormatError, match="admit no grid"):
        generate(4, [kind], seed=11, max_checks=0)


def test_16x16_alphabets_round_trip_in_the_input_symbols() -> None:
    hexgrid = "0" + "." * 255
    assert parse_grid(hexgrid).alphabet.symbols == "0123456789ABCDEF"
    assert parse_grid("G" + "." * 255).alphabet.symbols == "123456789ABCDEFG"
    p = parse_grid("0123456789ABCDEF" + "." * 240)
    result = solve(p, check_unique=False)
    text = format_grid(result.solutions[0], p.alphabet)
    assert text.startswith("0123456789ABCDEF") and set(text) == set("0123456789ABCDEF")


# -- rules JSON -----------------------------------------------------------------------


def _validate(obj: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(obj, SCHEMA)


@pytest.mark.parametrize("kind, size", [(k, s) for s in (4, 9) for k in GENERATED_KINDS if (k, s) not in
                                        {(k, 4) for k in NO_4x4_GRID}])
def test_rules_round_trip_and_match_schema(kind: str, size: int) -> None:
    puzzle, _ = generate(size, [kind], seed=11, max_checks=0)
    text = dumps_rules(puzzle, with_grid=True)
    assert " " not in text
    _validate(json.loads(text))
    assert loads_rules(text) == puzzle


def test_jigsaw_rules_round_trip() -> None:
    puzzle, _ = generate(6, ["killer"], seed=2, jigsaw=True, max_checks=0)
    obj = json.loads(dumps_rules(puzzle))
    assert "regions" in obj and "box" not in obj
    _validate(obj)
    assert read_rules(obj).regions == puzzle.regions


def test_docs_examples_parse() -> None:
    text = (ROOT / "docs" / "rules-format.md").read_text()
    blocks = re.findall(r"```json\n(.*?)\n```", text, re.S) + re.findall(r"`(\{\"size\".*?\})`", text)
    assert len(blocks) >= 3
    for block in blocks:
        _validate(json.loads(block))
        assert isinstance(loads_rules(block), Puzzle)


@pytest.mark.parametrize(
    "text, error, message",
    [
        ('{"size":9,"rulez":[]}', PuzzleFormatError, "unknown key(s) 'rulez'"),
        ('{"size":10}', None, None),
        ('{"size":17}', PuzzleFormatError, "'size' must be an integer 1..16"),
        ('{"size":"9"}', PuzzleFormatError, "'size' must be an integer"),
        ('{"size":9,"rules":[{"type":"spiral"}]}', UnknownConstraint, "unknown constraint 'spiral'"),
        ('{"size":9,"rules":[{"type":"killer","cells":["r1c1"],"sum":10}]}', PuzzleFormatError, "no 1 distinct digits"),
        ('{"size":9,"rules":[{"type":"killer","cells":["r1c1","r10c1"]}]}', PuzzleFormatError, "'r10c1' is not inside"),
        ('{"size":9,"rules":[{"type":"killer","cells":["a1"]}]}', PuzzleFormatError, "not of the form 'r1c1'"),
        ('{"size":9,"rules":[{"type":"killer","cells":["r1c1","r1c1"]}]}', PuzzleFormatError, "lists a cell twice"),
        ('{"size":9,"rules":[{"type":"killer","sum":3}]}', PuzzleFormatError, "lacks 'cells'"),
        ('{"size":9,"rules":[{"type":"killer","cells":["r1c1","r1c2"],"sum":3,"color":"red"}]}', PuzzleFormatError, "unknown key(s) 'color'"),
        ('{"size":9,"rules":[{"type":"kropki","color":"red","cells":["r1c1","r1c2"]}]}', PuzzleFormatError, "'red'"),
        ('{"size":9,"rules":[{"type":"thermo","cells":["r1c1"]}]}', PuzzleFormatError, "at least 2"),
        ('{"size":9,"rules":[{"type":"sandwich","row":1,"col":2,"sum":3}]}', PuzzleFormatError, "exactly one of 'row' or 'col'"),
        ('{"size":9,"rules":[{"type":"little_killer","clue":"r1c1","direction":"DR","sum":3}]}', PuzzleFormatError, "outside the grid"),
        ('{"size":9,"rules":[{"type":"little_killer","clue":"r0c1","direction":"NE","sum":3}]}', PuzzleFormatError, "'NE'"),
        ('{"size":9,"rules":{"type":"antiknight"}}', PuzzleFormatError, "'rules' must be a list"),
        ('{"size":4,"regions":["1122","1122","3344"]}', PuzzleFormatError, "4 strings"),
        ('{"size":4,"regions":["1111","1222","3334","3444"]}', PuzzleFormatError, "4 groups of 4"),
        ('{"size":9,"box":[2,3]}', PuzzleFormatError, "does not tile"),
        ('[1,2]', PuzzleFormatError, "must be a JSON object"),
        ('{"size":9,', PuzzleFormatError, "not valid JSON"),
    ],
)
def test_rules_errors_name_the_offending_part(text: str, error, message) -> None:
    if error is None:
        assert loads_rules(text).size == 10
        return
    with pytest.raises(error, match=re.escape(message)):
        loads_rules(text)


# -- f-puzzles ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED_KINDS)
def test_fpuzzles_round_trip(kind: str) -> None:
    puzzle, solution = generate(9, [kind], seed=5, max_checks=0)
    data = write_fpuzzles(puzzle, solution)
    again = read_fpuzzles(json.loads(json.dumps(data)))
    if kind == "windoku":  # f-puzzles has no windoku flag: it comes back as four extra regions
        assert [c.rule for c in again.constraints] == ["extra_region"] * 4
        assert solve(again).solution == solve(puzzle).solution
    else:  # f-puzzles groups rules by key, so only the order may change
        assert sorted(map(repr, again.constraints)) == sorted(map(repr, puzzle.constraints))
        assert again.with_constraints(()) == puzzle.with_constraints(())


def test_fpuzzles_jigsaw_regions_round_trip() -> None:
    puzzle, _ = generate(9, [], seed=4, jigsaw=True, max_checks=0)
    assert read_fpuzzles(write_fpuzzles(puzzle)) == puzzle


@pytest.mark.parametrize(
    "data, error, message",
    [
        ({"size": 9, "grid": [[{}] * 9] * 9, "spiral": []}, UnknownConstraint, "'spiral'"),
        ({"size": 9, "grid": [[{}] * 9] * 9, "line": [{"lines": [["R1C1", "R1C2"]]}]}, UnknownConstraint, "--ignore line"),
        ({"size": 9, "grid": [[{}] * 9] * 8}, PuzzleFormatError, "9 rows of 9 cells"),
        ({"size": 99, "grid": []}, PuzzleFormatError, "'size' must be an integer"),
        ({"size": 4, "grid": [[{"value": 7}, {}, {}, {}]] + [[{}] * 4] * 3}, PuzzleFormatError, "outside 1..4"),
        ({"size": 4, "grid": [[{}] * 4] * 4, "killercage": [{"cells": ["R1C1", "R9C9"]}]}, PuzzleFormatError, "'R9C9'"),
        ({"size": 4, "grid": [[{}] * 4] * 4, "xv": [{"cells": ["R1C1", "R1C2"], "value": "Z"}]}, PuzzleFormatError, "not X or V"),
        ({"size": 4, "grid": [[{}] * 4] * 4, "negative": ["dots"]}, PuzzleFormatError, "'dots'"),
    ],
)
def test_fpuzzles_errors(data: dict, error, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        read_fpuzzles(data)


def test_fpuzzles_ignore_drops_cosmetic_keys_knowingly() -> None:
    data = {"size": 4, "grid": [[{}] * 4] * 4, "line": [{"lines": [["R1C1", "R1C2"]]}]}
    assert read_fpuzzles(data, ignore={"line"}).constraints == ()


@pytest.mark.skipif(not PUZZLES.is_dir(), reason="../shared/data/puzzles is not checked out")
def test_16x16_zero_blanks_in_the_1_to_G_form() -> None:
    # 1-9A-G with '0' for blanks (no '.'): the zeros are blanks, not a sixteenth symbol.
    line = next(l for l in (PUZZLES / "classic_16x16_with_solutions.txt").read_text().splitlines() if l.strip())
    grid, _, solution = line.split(":")
    puzzle = parse_grid(grid.replace(".", "0"))
    assert puzzle.alphabet.symbols == "123456789ABCDEFG"
    assert format_grid(solve(puzzle).solution, puzzle.alphabet) == solution
