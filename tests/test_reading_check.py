"""The solver-checked reading: the model's doubtful digits settled with the real solver (pycosat).

The puzzles are real classic puzzles with one solution; the digits answers are their text as the model
writes it, tokenized by the embedded model's real tokenizer, with per-token choices set by hand (what the
engine would have given), so the mapping of tokens to cells and the search are exercised as they run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vlm_sudoku.runtime.answers import digits_text, locate_digits_answer
from vlm_sudoku.runtime.cli import default_model_dir
from vlm_sudoku.runtime.engine import top_choices
from vlm_sudoku.runtime.digit_belief import token_spans
from vlm_sudoku.runtime.reading_check import MIN_RELATIVE_P, cell_readings, check_reading, settle
from vlm_sudoku.runtime.tokenizer import Tokenizer
from vlm_sudoku.solver.grid_text import parse_grid
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.solver.solve import MULTIPLE, NO_SOLUTION, SOLVED, solve

from .paths import ROOT
from .test_cli_solve import HARD, run

# A classic with 30 givens and one solution; HARD (test_cli_solve) has 17, the fewest a classic with one
# solution can have, so any given dropped leaves several.
CLASSIC = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_folder(default_model_dir())


def _answer(tok: Tokenizer, grid: str, doubts: dict[tuple[int, int], list[tuple[str, float]]]
             ) -> tuple[str, list[int], list[list[tuple[int, float]]]]:
    """A digits answer for ``grid`` as the engine would return it: text, tokens, and per token its choices
    (the read symbol at 99% unless ``doubts`` gives a cell's choices, most likely first, the read one first)."""
    text = digits_text(parse_grid(grid))
    tokens = tok.encode(text)
    assert tok.decode(tokens) == text
    located = locate_digits_answer(text, 9)
    cell_at = {at: (r, c) for r, row in enumerate(located.offsets) for c, at in enumerate(row)}
    choices = []
    for token, span in zip(tokens, token_spans(tokens, tok, text)):
        cell = cell_at.get(span[0]) if span is not None and span[1] - span[0] == 1 else None
        if cell in doubts:
            step = [(tok.encode(sym)[0], math.log(p)) for sym, p in doubts[cell]]
            assert step[0][0] == token
        else:
            step = [(token, math.log(0.99)), (tok.encode("\n")[0], math.log(0.01))]
        choices.append(step)
    return text, tokens, choices


def _with(grid: str, cell: tuple[int, int], symbol: str) -> str:
    i = 9 * cell[0] + cell[1]
    return grid[:i] + symbol + grid[i + 1:]


def _check(tok: Tokenizer, grid: str, doubts: dict, **bounds):
    text, tokens, choices = _answer(tok, grid, doubts)
    puzzle = parse_grid(grid)
    return check_reading(puzzle, solve(puzzle), text, tokens, choices, tok, **bounds)


@pytest.mark.parametrize("wrong", ["4", "8"])
def test_a_misread_given_is_corrected_to_the_model_second_choice(tok: Tokenizer, wrong: str) -> None:
    """r1c2 is a 3, read as a 4 (no repeat, but no grid fits) or an 8 (box 1 holds one already), with the 3 as
    the second choice: the check takes the 3 back, says so, and the puzzle solves as the original does."""
    misread = _with(CLASSIC, (0, 1), wrong)
    assert solve(parse_grid(misread)).status == NO_SOLUTION
    check = _check(tok, misread, {(0, 1): [(wrong, 0.6), ("3", 0.3), ("9", 0.05)]})
    assert check is not None and check.corrected
    assert check.puzzle.format_grid() == CLASSIC
    assert check.result.status == SOLVED and check.result.solution == solve(parse_grid(CLASSIC)).solution
    assert check.read_status == NO_SOLUTION and check.read_puzzle.format_grid() == misread
    (fix,) = check.corrections
    assert (fix.where, fix.read, fix.taken, fix.rank) == ("r1c2", wrong, "3", 2)
    assert fix.read_p == pytest.approx(0.6) and fix.taken_p == pytest.approx(0.3)
    assert fix.describe() == f"r1c2 read as {wrong} (60%), taken as 3 (the model's second choice, 30%)"
    assert "had no solution" in check.why()
    assert fix.as_json() == {"cell": "r1c2", "read": wrong, "taken": "3", "read_p": 0.6, "taken_p": 0.3, "choice": 2}


def test_a_given_read_as_a_blank_is_restored(tok: Tokenizer) -> None:
    """HARD's r1c1 4 dropped: several solutions; the blank's second choice, 4, gives the one."""
    dropped = _with(HARD, (0, 0), ".")
    assert solve(parse_grid(dropped)).status == MULTIPLE
    check = _check(tok, dropped, {(0, 0): [(".", 0.7), ("9", 0.2), ("4", 0.1)]})
    assert check is not None and check.corrected and check.puzzle.format_grid() == HARD
    assert [(c.where, c.read, c.taken, c.rank) for c in check.corrections] == [("r1c1", ".", "4", 3)]
    assert check.corrections[0].describe().startswith("r1c1 read as a blank (70%), taken as 4 (the model's third")
    assert check.read_status == MULTIPLE and "several solutions" in check.why()


def test_two_misreads_are_corrected_together(tok: Tokenizer) -> None:
    misread = _with(_with(CLASSIC, (0, 1), "4"), (8, 8), "1")
    check = _check(tok, misread, {(0, 1): [("4", 0.6), ("3", 0.35)], (8, 8): [("1", 0.7), ("9", 0.25)],
                                  (4, 0): [("4", 0.8), ("9", 0.15)]})
    assert check is not None and check.puzzle.format_grid() == CLASSIC
    assert [c.where for c in check.corrections] == ["r1c2", "r9c9"]


def test_the_most_likely_correction_wins(tok: Tokenizer) -> None:
    """r1c1 read as a blank with the right 4 and a wrong 7 among its choices, and a doubt elsewhere: only
    the 4 gives one solution, however the others are ordered."""
    dropped = _with(HARD, (0, 0), ".")
    check = _check(tok, dropped, {(0, 0): [(".", 0.5), ("7", 0.3), ("4", 0.2)],
                                  (0, 4): [("3", 0.6), ("8", 0.4)]})
    assert check is not None and [(c.where, c.taken) for c in check.corrections] == [("r1c1", "4")]
    assert check.candidates >= 1


def test_no_alternative_that_helps_leaves_the_reading_as_it_stands(tok: Tokenizer) -> None:
    misread = _with(CLASSIC, (0, 1), "4")
    puzzle = parse_grid(misread)
    read = solve(puzzle)
    # the wrong cell is read with certainty; another cell's doubt does not make it solvable
    text, tokens, choices = _answer(tok, misread, {(4, 0): [("4", 0.7), ("9", 0.3)]})
    check = check_reading(puzzle, read, text, tokens, choices, tok)
    assert check is not None and not check.corrected and check.corrections == () and check.candidates == 1
    assert check.puzzle is puzzle and check.result is read and check.read_status == NO_SOLUTION
    assert "the reading stands as given" in check.summary()
    # the right digit below the floor is no alternative either
    below = _check(tok, misread, {(0, 1): [("4", 0.99), ("3", 0.99 * MIN_RELATIVE_P / 2)]})
    assert below is not None and not below.corrected


def test_a_unique_reading_is_untouched(tok: Tokenizer) -> None:
    check = _check(tok, CLASSIC, {(0, 0): [("5", 0.5), ("6", 0.5)]})
    assert check is not None and not check.corrected and check.candidates == 0
    assert check.puzzle.format_grid() == CLASSIC and check.result.status == SOLVED


def test_without_choices_there_is_no_check(tok: Tokenizer) -> None:
    puzzle = parse_grid(_with(CLASSIC, (0, 1), "4"))
    assert check_reading(puzzle, solve(puzzle), digits_text(puzzle), tok.encode(digits_text(puzzle)), None, tok) is None


def test_the_bounds_hold(tok: Tokenizer) -> None:
    """Many doubts of which none helps (the misread cell is certain): the search stops at its bounds.

    Which doubts help none is picked, not built: a 30-given classic read with one wrong digit can come out
    unique after changing another given (for this misread, another given read one or two higher does it for
    several cells), which is why the check wants the model's own doubt behind a change. Taking every given
    five higher (mod 9), the whole search (62 candidates) finds nothing."""
    misread = _with(CLASSIC, (0, 1), "4")
    doubts = {(r, c): [(str(v), 0.5), (str((v + 4) % 9 + 1), 0.4)]
              for r in range(1, 9) for c in range(9) if (v := parse_grid(misread).givens[r][c])}
    capped = _check(tok, misread, doubts, max_candidates=5)
    assert capped is not None and not capped.corrected and capped.result.status == NO_SOLUTION
    assert capped.candidates == 5 and capped.stopped_by == "candidates"
    timed = _check(tok, misread, doubts, max_seconds=0.0)
    assert timed is not None and timed.candidates == 0 and timed.stopped_by == "seconds"
    one = _check(tok, misread, doubts, max_changes=1)
    assert one is not None and not one.corrected and one.stopped_by is None
    assert 5 < one.candidates <= len(doubts)


def test_settle_searches_cheapest_first() -> None:
    """The heap hands out sets of changes in order of their total loss: with the right fix last in that order,
    every cheaper set is tried first (and none of them solves)."""
    from vlm_sudoku.runtime.reading_check import Alternative, CellReading

    misread = parse_grid(_with(CLASSIC, (0, 1), "4"))
    readings = {(0, 1): CellReading((0, 1), 4, 0.5, (Alternative(3, 1.5, 0.11, 2),)),
                (1, 3): CellReading((1, 3), 1, 0.5, (Alternative(2, 0.2, 0.4, 2),)),
                (2, 7): CellReading((2, 7), 6, 0.5, (Alternative(1, 0.3, 0.37, 2),))}
    check = settle(misread, readings, max_changes=1)
    assert check.corrected and check.puzzle.format_grid() == CLASSIC
    assert check.candidates == 3  # 2 at r2c4, 1 at r3c8, then the 3


def test_tokens_map_to_cells_and_multi_character_tokens_get_no_alternatives(tok: Tokenizer) -> None:
    """16x16: the tokenizer merges some letter pairs (e.g. 'AG') into one token; those cells stay as read."""
    symbols = "123456789ABCDEFG"  # a valid 16x16 grid by a shifted pattern, a third of it blank
    rows = ["".join("." if (r + 2 * c) % 3 == 0 else symbols[(4 * r + r // 4 + c) % 16] for c in range(16))
            for r in range(16)]
    text = "\n".join(rows)
    tokens = tok.encode(text)
    spans = token_spans(tokens, tok, text)
    assert all(s is not None for s in spans) and spans[-1][1] == len(text)
    multi = [s for s in spans if s[1] - s[0] > 1]
    assert multi  # the embedded tokenizer merges letter runs such as 'AG', 'BB'
    alt = tok.encode("5")[0]
    choices = [[(t, math.log(0.6)), (alt, math.log(0.4))] for t in tokens]
    readings = cell_readings(text, tokens, choices, tok, 16)
    located = locate_digits_answer(text, 16)
    inside = {(r, c) for r, row in enumerate(located.offsets) for c, at in enumerate(row)
              if any(s[0] <= at < s[1] for s in multi)}
    assert inside and not inside & set(readings)
    single = [(r, c) for r in range(16) for c in range(16) if (r, c) not in inside and located.grid[r][c] != 5]
    assert set(single) <= set(readings)
    assert all(readings[cell].alternatives[0].value == 5 for cell in single)


def test_locate_digits_answer_gives_each_cell_its_character() -> None:
    text = "Sure:\n```\n1 2 | 3 4\r\n----+----\n3 4 | 1 2\n.1..\n2143\n```\nDone."
    located = locate_digits_answer(text, 4)
    assert located.grid == ((1, 2, 3, 4), (3, 4, 1, 2), (0, 1, 0, 0), (2, 1, 4, 3))
    assert ["".join(text[at] for at in row) for row in located.offsets] == ["1234", "3412", ".1..", "2143"]


# -- the engine's alternatives: top-1 is the greedy token, log-probs are the logits' log-softmax ------------


def test_top_choices_is_the_log_softmax() -> None:
    logits = np.random.default_rng(0).normal(size=300).astype(np.float32)
    logits[7] = logits[9] = logits.max() + 1  # a tie: the lower id first, as np.argmax
    top = top_choices(logits, 5)
    x = logits.astype(np.float64)
    want = x - (x.max() + np.log(np.exp(x - x.max()).sum()))
    assert [t for t, _ in top] == [7, 9, *np.argsort(-x)[2:5].tolist()]
    assert top[0][0] == int(np.argmax(logits))
    np.testing.assert_allclose([lp for _, lp in top], want[[t for t, _ in top]], rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def fused_tiny(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl_dir: Path) -> Path:
    from vlm_sudoku.export.exporter import ExportOptions, export_model

    out = tmp_path_factory.mktemp("fused_choices") / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(fused_decoder=True, check_tokens=0))
    return out


@pytest.mark.parametrize("path", ["plain", "optimum-io-binding", "static-cache"])
def test_engine_choices_are_the_greedy_tokens_and_the_plain_log_softmax(fused_tiny: Path, path: str) -> None:
    """Per generated token, choices[0] is the greedy token and every log-probability equals the log-softmax of
    the plain path's logits for that position (a whole-sequence prefill: an independent computation), for the
    first token (the prefill's logits) and each decode step; asking for them changes no token."""
    from PIL import Image

    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.prompts import shared_prompt

    kwargs = {"plain": {}, "optimum-io-binding": {"decoder": "optimum", "io_binding": True},
              "static-cache": {"io_binding": True}}[path]
    engine = Engine(fused_tiny, provider="cpu", **kwargs)
    assert (engine.static_cache, engine.fused) == {"plain": (False, True), "optimum-io-binding": (False, False),
                                                   "static-cache": (True, True)}[path]
    reference = Engine(fused_tiny, provider="cpu")
    for e in (engine, reference):
        e.stop_ids = frozenset()
    image = Image.fromarray(np.random.default_rng(4).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    encoded = engine.encode_image(image)
    prompt = shared_prompt(engine.tokenizer, [encoded.num_tokens])
    _logits, cache = engine.prefill(prompt.prefix_ids, [encoded])
    n, k = 10, 4
    greedy = engine.generate(prompt.suffix_ids["digits"], past=cache, max_new_tokens=n)
    got = engine.generate(prompt.suffix_ids["digits"], past=cache, max_new_tokens=n, alternatives=k)
    assert greedy.choices is None
    assert got.tokens == greedy.tokens and len(got.choices) == n
    assert [step[0][0] for step in got.choices] == got.tokens
    ids = prompt.full("digits")
    for i, step in enumerate(got.choices):
        logits, _ = reference.prefill(ids + got.tokens[:i], [encoded])
        x = logits.astype(np.float64)
        want = x - (x.max() + np.log(np.exp(x - x.max()).sum()))
        assert len(step) == k and [lp for _, lp in step] == sorted((lp for _, lp in step), reverse=True)
        assert [t for t, _ in step] == np.argsort(-x, kind="stable")[:k].tolist(), i
        np.testing.assert_allclose([lp for _, lp in step], want[[t for t, _ in step]], rtol=0, atol=2e-4)


# -- the product: vlm-solve on the embedded default model and real photos -------------------------------------


EXAMPLE = ROOT / "examples" / "image162.jpg"


def test_vlm_solve_json_has_the_corrections_and_still_solves() -> None:
    proc = run(str(EXAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "solved" and out["corrections"] == [] and "grid_as_read" not in out
    assert "reading check" not in proc.stderr


def _misreading(monkeypatch: pytest.MonkeyPatch) -> tuple[Puzzle, tuple[int, int], str]:
    """Make the real model misread one given of the example photo: after the real read_image, one digit token
    of the digits answer becomes a wrong digit (one that leaves the puzzle with no solution), and that step's
    choices put the wrong digit first at 50% and the right one second at 45% (the model's other choices are
    its own). Returns the photo's true puzzle, the cell, and the wrong symbol."""
    from vlm_sudoku.runtime.pipeline import Pipeline
    from vlm_sudoku.tools.train.photos import read_dat

    truth = Puzzle.create(9, read_dat(EXAMPLE.with_suffix(".dat")))
    cell, wrong = next(((r, c), str(w)) for r in range(9) for c in range(9) if truth.givens[r][c]
                       for w in range(1, 10) if w != truth.givens[r][c]
                       and solve(truth.with_givens(_set(truth.givens, (r, c), w))).status == NO_SOLUTION)
    real = Pipeline.read_image

    def read_image(self, image, questions=("rules", "digits"), on_text=None):
        reading = real(self, image, questions, on_text)
        gen, tok = reading.answers["digits"], self.engine.tokenizer
        assert gen.text.replace("\n", "") == truth.format_grid(), "the model no longer reads the example right"
        at = locate_digits_answer(gen.text, 9).offsets[cell[0]][cell[1]]
        i = next(i for i, span in enumerate(token_spans(gen.tokens, tok, gen.text)) if span == (at, at + 1))
        right, bad = gen.tokens[i], tok.encode(wrong)[0]
        gen.tokens[i] = bad
        gen.text = tok.decode(gen.tokens)
        if gen.choices is not None:
            others = [(t, lp) for t, lp in gen.choices[i][1:] if t not in (right, bad)]
            gen.choices[i] = [(bad, math.log(0.5)), (right, math.log(0.45)), *others]
        return reading

    monkeypatch.setattr(Pipeline, "read_image", read_image)
    return truth, cell, wrong


def _set(givens, cell, value):
    rows = [list(row) for row in givens]
    rows[cell[0]][cell[1]] = value
    return rows


def test_pipeline_corrects_a_misread_given_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from vlm_sudoku.runtime.pipeline import Pipeline, outcome_json

    truth, cell, wrong = _misreading(monkeypatch)
    where = f"r{cell[0] + 1}c{cell[1] + 1}"
    right = str(truth.givens[cell[0]][cell[1]])
    pipe = Pipeline.load(default_model_dir(), provider="cpu", views=1)
    out = pipe.solve_path(EXAMPLE)
    assert out.error is None and out.check is not None and out.exit_code == 0
    assert out.puzzle.givens == truth.givens and out.result.solution == solve(truth).solution
    assert [(c.where, c.read, c.taken, c.rank) for c in out.corrections] == [(where, wrong, right, 2)]
    obj = outcome_json(out)
    assert obj["grid"] == truth.format_grid() and obj["grid_as_read"] == _with(obj["grid"], cell, wrong)
    assert obj["status_as_read"] == NO_SOLUTION and obj["status"] == SOLVED
    assert obj["corrections"] == [{"cell": where, "read": wrong, "taken": right, "read_p": 0.5, "taken_p": 0.45,
                                   "choice": 2}]
    assert "reading_check" in obj["timings"]

    strict = Pipeline(pipe.engine, check_reading=False, views=1)
    as_read = strict.solve_path(EXAMPLE)
    assert as_read.check is None and as_read.result.status == NO_SOLUTION and as_read.exit_code == 3
    assert as_read.reading.answers["digits"].choices is None  # not even asked for
    assert as_read.reading.answers["digits"].tokens == out.reading.answers["digits"].tokens


def test_vlm_solve_prints_each_correction_and_no_reading_check_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from vlm_sudoku.runtime.cli import main

    truth, cell, wrong = _misreading(monkeypatch)
    where, right = f"r{cell[0] + 1}c{cell[1] + 1}", str(truth.givens[cell[0]][cell[1]])
    checked = CliRunner().invoke(main, [str(EXAMPLE), "--provider", "cpu", "--views", "1"])
    assert checked.exit_code == 0, checked.output
    assert (f"{where} read as {wrong} (50%), taken as {right} (the model's second choice, 45%): the reading as "
            "given had no solution") in checked.stdout
    assert f"the reading check took {where} as {right} (read {wrong})" in checked.stderr
    strict = CliRunner().invoke(main, [str(EXAMPLE), "--provider", "cpu", "--views", "1", "--no-reading-check",
                                       "--json"])
    assert strict.exit_code == 3
    out = json.loads(strict.stdout)
    assert out["status"] == NO_SOLUTION and out["corrections"] == [] and "grid_as_read" not in out
    assert out["grid"] == _with(truth.format_grid(), cell, wrong)


def test_the_other_views_outvote_one_view_misreading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same misreading in the first view only (the model 50% sure of the wrong digit, 45% of the right
    one): with three views the two that read the photo as it is outvote it, so the puzzle is right as read and
    the check has nothing to do; the answers of the other views are the real model's, decoded with choices."""
    from vlm_sudoku.runtime.pipeline import Pipeline, outcome_json

    truth, cell, wrong = _misreading(monkeypatch)
    pipe = Pipeline.load(default_model_dir(), provider="cpu")
    assert pipe.views == 3
    out = pipe.solve_path(EXAMPLE)
    assert out.error is None and out.exit_code == 0 and out.views == 3
    assert len(out.reading.more_digits) == 2 and all(g.choices is not None for g in out.reading.more_digits)
    assert parse_grid(out.reading.answers["digits"].text).givens[cell[0]][cell[1]] == int(wrong)
    assert out.puzzle.givens == truth.givens and out.check is None and out.corrections == ()
    obj = outcome_json(out)
    assert obj["views"] == 3 and obj["grid"] == truth.format_grid() and "more_views" in obj["timings"]
    # the views' belief at the cell: the right digit well ahead, the first view's doubt still in it
    belief = pipe.belief(out.reading, 9)
    right = truth.givens[cell[0]][cell[1]]
    assert belief.views == 3 and belief.grid == truth.givens
    assert belief.p(cell, right) > 0.45 and belief.p(cell, int(wrong)) < 0.45
    # without the check, the views still decide
    strict = Pipeline(pipe.engine, check_reading=False).solve_path(EXAMPLE)
    assert strict.puzzle.givens == truth.givens and strict.check is None
