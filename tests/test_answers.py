"""Parsing the model's answers: chatter and fences tolerated, bad content named and quoted."""

from __future__ import annotations

import pytest

from vlm_sudoku.runtime.answers import digits_text, parse_digits_answer, parse_rules_answer, read_answers
from vlm_sudoku.solver import ModelOutputError, dumps_rules, solve
from vlm_sudoku.solver.generate import generate

ROWS = "53..7....\n6..195...\n.98....6.\n8...6...3\n4..8.3..1\n7...2...6\n.6....28.\n...419..5\n....8..79"


@pytest.mark.parametrize(
    "text",
    [
        '{"size":9,"rules":[]}',
        'Here are the rules:\n```json\n{"size": 9, "rules": []}\n```\nGood luck!',
        'The puzzle is classic. {"size":9} That is all.',
    ],
)
def test_rules_answer_tolerates_chatter(text: str) -> None:
    assert parse_rules_answer(text).size == 9


@pytest.mark.parametrize(
    "text, needle",
    [
        ("I think it is a normal sudoku", "holds no JSON object"),
        ('{"size":9,"rules":[{"type":"killer","cells":["r1c1"', "breaks off"),
        ('{"size":9,"rules":[{"type":"spiral"}]}', "unknown constraint 'spiral'"),
        ('{"size":9,"rules":[{"type":"killer","cells":["r1c1","r1c2"],"sum":99}]}', "must be an integer"),
        ('{"size":9,"rules":[],"grid":"' + "." * 81 + '"}', "carries a 'grid'"),
        ("{'size': 9}", "not valid JSON"),
    ],
)
def test_rules_answer_errors_quote_the_text(text: str, needle: str) -> None:
    with pytest.raises(ModelOutputError, match=needle) as err:
        parse_rules_answer(text)
    assert "'" in str(err.value) and err.value.exit_code == 5


def test_digits_answer_tolerates_layouts() -> None:
    plain = parse_digits_answer(ROWS, 9)
    fenced = parse_digits_answer("Sure:\n```\n" + ROWS + "\n```", 9)
    pretty = "\n".join(" ".join(r[:3]) + " | " + " ".join(r[3:6]) + " | " + " ".join(r[6:]) for r in ROWS.splitlines())
    pretty = pretty.replace("\n4", "\n------+-------+------\n4").replace("\n.6.", "\n------+-------+------\n.6.")
    assert plain == fenced == parse_digits_answer(pretty, 9) == parse_digits_answer(ROWS.replace(".", "0"), 9)
    assert plain[0] == (5, 3, 0, 0, 7, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "text, size, needle",
    [
        ("\n".join(ROWS.splitlines()[:8]), 9, "8 complete row(s)"),
        (ROWS.replace("53..7....", "53..7..."), 9, "row 1 of the model's digits answer has 8 symbols, not 9"),
        (ROWS.replace("6..195...", "6..1X5..."), 9, "complete row(s)"),
        ("I could not read the image.", 9, "0 complete row(s)"),
        ("1234\n3412\n2143", 4, "3 complete row(s)"),
    ],
)
def test_digits_answer_errors(text: str, size: int, needle: str) -> None:
    with pytest.raises(ModelOutputError, match=__import__("re").escape(needle)):
        parse_digits_answer(text, size)


@pytest.mark.parametrize("size, kinds", [(4, []), (6, ["killer"]), (9, ["thermo", "odd_even"]), (16, [])])
def test_round_trip_through_the_answers(size: int, kinds: list[str]) -> None:
    puzzle, solution = generate(size, kinds, seed=1, max_checks=20)
    rules_only = puzzle.with_givens([[0] * size] * size)
    again = read_answers(dumps_rules(rules_only), digits_text(puzzle))
    assert again == puzzle
    assert solve(again).solution == solution
