"""The marks map (runtime/marks_map.py): every layer written from a puzzle reads back to the same rules, a map
is one token per code in the default tokenizer, and a map that is not one is a one-line ModelOutputError."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from vlm_sudoku.runtime.answers import read_answers
from vlm_sudoku.runtime.marks_map import (LAYERS, declared_layers, layers_of, map_is_right, map_text, maps_in,
                                          parse_map, read_map, with_maps)
from vlm_sudoku.runtime.model_config import ModelFolderError
from vlm_sudoku.runtime.tokenizer import Tokenizer
from vlm_sudoku.solver.constraints.cells import Even
from vlm_sudoku.solver.constraints.lines import Between, Palindrome, Thermo
from vlm_sudoku.solver.constraints.pairs import XV, Kropki
from vlm_sudoku.solver.constraints.sums import Arrow, Killer, LittleKiller, Sandwich
from vlm_sudoku.solver.errors import ModelOutputError
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.tools.eval_reader import same_rules
from vlm_sudoku.tools.render import digits_answer, rules_answer
from vlm_sudoku.tools.render.puzzles import parse_kinds, sample_puzzle
from vlm_sudoku.tools.train.data import TRAINED_LAYERS

from vlm_sudoku.runtime.cli import default_model_dir


def _puzzles(count: int):
    for seed in range(count):
        yield sample_puzzle(random.Random(seed), kinds=parse_kinds("all"))[0]


def _without(puzzle: Puzzle, layer: str) -> Puzzle:
    """The puzzle without the layer's rules (regions: with standard boxes)."""
    from vlm_sudoku.runtime.marks_map import LAYER_RULES

    if layer == "regions":
        return Puzzle.create(puzzle.size, puzzle.givens, constraints=puzzle.constraints)
    return replace(puzzle, constraints=tuple(c for c in puzzle.constraints if c.rule not in LAYER_RULES[layer]))


def test_every_layer_of_generated_puzzles_reads_back_to_the_same_rules() -> None:
    """Over 300 generated puzzles of every kind and size: each layer's map, read back over the puzzle without that
    layer's rules, gives exactly the true puzzle; every trained layer is met."""
    met = set()
    for puzzle in _puzzles(300):
        for layer in layers_of(puzzle):
            text = map_text(puzzle, layer)
            assert text is not None, (layer, puzzle)
            assert len(text.splitlines()) == puzzle.size + 2 * (layer == "outside")  # (the ring around the grid)
            assert map_is_right(text, layer, puzzle)
            assert not same_rules(_without(puzzle, layer), puzzle)
            assert same_rules(with_maps(_without(puzzle, layer), {layer: text}), puzzle), (layer, text)
            met.add(layer)
    assert met == set(TRAINED_LAYERS)


def test_line_layers_write_the_step_to_the_next_cell_and_read_their_direction_back() -> None:
    """A thermometer and an arrow keep their direction (bulb first); palindrome and between lines, which read the
    same both ways, come back starting at the end nearer the top-left; cages keep their sums, up to three digits
    on 16x16."""
    thermo = Thermo(((2, 2), (1, 1), (1, 2), (0, 3)))
    arrow = Arrow(((3, 0),), ((2, 0), (2, 1)))
    pal = Palindrome(((0, 0), (1, 0), (2, 1)))
    between = Between(((3, 3), (2, 3), (1, 3)))
    puzzle = Puzzle.create(4, constraints=[thermo, arrow, pal, between])
    assert map_text(puzzle, "thermo") == "...5\n.69.\n..7.\n...."
    assert map_text(puzzle, "arrow") == "....\n....\n65..\n8..."
    for layer, rule in (("thermo", thermo), ("arrow", arrow), ("palindrome", pal)):
        assert read_map(map_text(puzzle, layer), layer, 4) == [rule]
    assert read_map(map_text(puzzle, "between"), "between", 4) == [Between(((1, 3), (2, 3), (3, 3)))]
    cage = Killer(tuple((r, c) for r in range(2) for c in range(8)), 136)
    big = Puzzle.create(16, constraints=[cage])
    assert map_text(big, "killer").splitlines()[0] == "X136" + "X" * 6 + "V" + "." * 8
    assert read_map(map_text(big, "killer"), "killer", 16) == [cage]


def test_clues_outside_the_grid_are_a_map_of_the_grid_and_the_ring_around_it() -> None:
    """A sandwich clue above its column or left of its row, a little killer where it is printed with the way its
    arrow points; two clues at one place are joined by '+', and each reads back where it was."""
    clues = [Sandwich("col", 1, 5), Sandwich("row", 0, 0), LittleKiller((-1, -1), "DR", 10, 4),
             LittleKiller((0, -1), "DR", 7, 4), LittleKiller((4, 2), "UL", 3, 4)]
    puzzle = Puzzle.create(4, constraints=clues)
    text = map_text(puzzle, "outside")
    assert text == "DR10.S5...\nDR7+S0.....\n......\n......\n......\n...UL3.."
    assert sorted(map(repr, read_map(text, "outside", 4))) == sorted(map(repr, clues))
    # a sandwich clue below its column or right of its row says the same as above or left of it
    assert read_map("......\n.....S4\n......\n......\n......\n..S9...", "outside", 4) == [
        Sandwich("row", 0, 4), Sandwich("col", 1, 9)]


def test_edge_marks_are_three_times_the_right_edge_plus_the_bottom_edge() -> None:
    dots = [Kropki((0, 0), (0, 1), "white", 1), Kropki((0, 0), (1, 0), "black", 2), XV((1, 1), (1, 2), 5)]
    puzzle = Puzzle.create(4, constraints=dots)
    assert map_text(puzzle, "kropki").splitlines()[0] == "5..."  # 3 x white + black
    assert map_text(puzzle, "xv").splitlines()[1] == ".6.."  # 3 x V
    assert read_map(map_text(puzzle, "kropki"), "kropki", 4) == dots[:2]
    assert map_text(Puzzle.create(4, constraints=[Kropki((0, 0), (0, 1), "white", 2)]), "kropki") is None


def test_a_map_is_one_token_per_code_in_the_default_tokenizer() -> None:
    """Why the codes are digits, '.', K, H, V, X and S: the default tokenizer keeps each of them, in any
    neighbourhood, as a token of its own, so a map row walks over the cells one token each as a digits row does
    (a cage sum or a clue outside the grid adds a token per digit; a little killer's arrow, DR, DL, UR or UL, is
    one token, as is the '+' between two clues at one place)."""
    tok = Tokenizer.from_folder(default_model_dir())
    for puzzle in _puzzles(120):
        for layer in layers_of(puzzle):
            text = map_text(puzzle, layer)
            arrows = sum(text.count(a) for a in ("DR", "DL", "UR", "UL"))
            assert len(tok.encode(text)) == len(text) - arrows, (layer, text)


@pytest.mark.parametrize("layer, text, why", [
    ("killer", "K5K.\n....\n....\n....", "row 1 of the model's killer map has 3 cells, not 4"),
    ("killer", "H...\n....\n....\n....", "goes on to a cell outside the cages"),
    ("killer", "H3K4..\n....\n....\n....", "has 2 sums"),
    ("thermo", "6...\n....\n....\n....", "steps off the lines"),
    ("thermo", "65..\n.8..\n....\n....", "two lines step into"),
    ("thermo", "62..\n84..\n....\n....", "closes on itself"),
    ("thermo", "5...\n....\n....\n....", "has one cell"),
    ("kropki", "...3\n....\n....\n....", "lies outside the grid"),
    ("regions", "1...\n....\n....\n....", "regions must be"),
    ("odd_even", "1.2\n....\n....\n....", "row 1 of the model's odd_even map has 3 cells"),
    ("odd_even", "1..3\n....\n....\n....", "3 complete row(s)"),  # a line with another code is chatter
    ("xv", "....\n....\n....", "3 complete row(s)"),
    ("outside", "......\n.S3....\n......\n......\n......\n......", "lies in the grid's cell r1c1"),
    ("outside", "S3.....\n......\n......\n......\n......\n......", "at a corner of the grid"),
    ("outside", "UR3.....\n......\n......\n......\n......\n......", "misses the grid"),
    ("outside", "....\n....\n....\n....", "row 1 of the model's outside map has 4 cells, not 6"),
])
def test_a_map_that_is_not_one_is_a_one_line_model_output_error(layer: str, text: str, why: str) -> None:
    with pytest.raises(ModelOutputError) as err:
        read_map(text, layer, 4)
    assert why in str(err.value) and "\n" not in str(err.value)


def test_chatter_before_the_rows_is_skipped_and_a_map_showing_nothing_is_refused() -> None:
    assert parse_map("Here is the map:\n1..2\n....\n....\n.... \nDone.", "odd_even", 4)[0] == ["1", ".", ".", "2"]
    rules = '{"size":4,"rules":[{"type":"thermo","cells":["r1c1","r1c2"]}]}'
    with pytest.raises(ModelOutputError, match="thermo map shows none, though its rules answer names thermo"):
        read_answers(rules, "....\n" * 4, {"thermo": "....\n" * 4})
    puzzle = read_answers(rules, "1...\n....\n....\n....", {"thermo": "....\n.3..\n..5.\n...."})
    assert puzzle.constraints == (Thermo(((1, 1), (2, 2))),) and puzzle.givens[0][0] == 1


def test_a_rendered_puzzles_answers_with_its_maps_are_the_puzzle() -> None:
    """The three answers the model is trained on, read as the pipeline reads them (the maps' rules replace the
    rules answer's), give back the puzzle, givens included."""
    for puzzle in _puzzles(80):
        layers = layers_of(puzzle)
        texts = {"rules": rules_answer(puzzle), **{f"map:{k}": map_text(puzzle, k) for k in layers}}
        read = read_answers(texts["rules"], digits_answer(puzzle), maps_in(texts))
        assert same_rules(read, puzzle) and read.givens == puzzle.givens


def test_a_model_declares_its_layers_in_its_preprocessor_config() -> None:
    assert declared_layers({}) == ()
    assert declared_layers({"vlm_sudoku_marks_map": ["killer", "regions"]}) == ("killer", "regions")
    for bad in (["killer", "snake"], "killer", [1]):
        with pytest.raises(ModelFolderError, match="vlm_sudoku_marks_map must list layers of"):
            declared_layers({"vlm_sudoku_marks_map": bad})
    jigsaw = sample_puzzle(random.Random(7), kinds=("killer",), sizes=(6,))[0]
    assert set(layers_of(jigsaw)) <= set(LAYERS)
    assert layers_of(jigsaw, declared=()) == []


def test_a_map_that_cannot_be_used_leaves_its_layer_to_the_rules_answer_and_says_why() -> None:
    """vlm-solve's reading: a map that is not one, or shows nothing of a layer the rules answer names, costs that
    layer (its rules stay the rules answer's, and a one-line problem says why), not the whole reading; the other
    maps are used. Asked to, with_maps raises instead (a ModelOutputError, exit status 5)."""
    rules = '{"size":4,"rules":[{"type":"thermo","cells":["r1c1","r1c2"]},{"type":"odd","cells":["r4c4"]}]}'
    digits = "1...\n....\n....\n...."
    maps = {"thermo": "6...\n....\n....\n....", "odd_even": "....\n....\n....\n2..."}
    with pytest.raises(ModelOutputError, match="thermo map is not valid"):
        read_answers(rules, digits, maps)
    problems: list[str] = []
    puzzle = read_answers(rules, digits, maps, problems)
    assert sorted(map(repr, puzzle.constraints)) == sorted(map(repr, [Thermo(((0, 0), (0, 1))), Even(((3, 0),))]))
    assert len(problems) == 1 and "\n" not in problems[0]
    assert "thermo map is not valid" in problems[0] and problems[0].endswith("the thermo rules are the rules answer's")
    problems.clear()
    read_answers(rules, digits, {"thermo": "....\n" * 4}, problems)
    assert "thermo map shows none, though its rules answer names thermo" in problems[0]


def test_vlm_solve_reports_a_map_left_unused_with_the_reading() -> None:
    """Pipeline.settle (what vlm-solve and eval_reader do with a reading) reads with the maps it can use and
    keeps the problems for stderr and --json."""
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Outcome, Pipeline, Reading, outcome_json

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    rules = '{"size":4,"rules":[{"type":"thermo","cells":["r1c1","r1c2"]}]}'
    reading = Reading(encoded=[], prefix_tokens=0, prefix_s=0.0, answers={
        "rules": said(rules), "digits": said("1...\n....\n....\n...."), "map:thermo": said("6...\n" + "....\n" * 3)})
    pipeline = Pipeline.load(default_model_dir(), provider="cpu", check_reading=False, views=1)
    out = Outcome("x.png", reading=reading)
    pipeline.settle(reading, out)
    assert out.puzzle is not None and out.puzzle.constraints == (Thermo(((0, 0), (0, 1))),)
    assert len(out.map_problems) == 1 and "steps off the lines" in out.map_problems[0]
    assert outcome_json(out)["map_problems"] == out.map_problems


def _kropki_puzzle() -> Puzzle:
    """A generated 9x9 kropki puzzle whose rules answer passes the 512-token cap of the runtime."""
    tok = Tokenizer.from_folder(default_model_dir())
    for seed in range(200):
        puzzle = sample_puzzle(random.Random(seed), kinds=("kropki",), sizes=(9,))[0]
        if len(tok.encode(rules_answer(puzzle))) > 512:
            return puzzle
    raise AssertionError("no generated kropki puzzle passes 512 tokens")


def test_a_rules_answer_cut_short_inside_a_mapped_layer_is_read_with_that_layers_map() -> None:
    """A rules answer listing dozens of kropki dots passes the token cap and breaks off; the kropki map holds them
    all, so the reading is the whole puzzle, with a one-line problem saying the list was cut. Without a map of
    that layer, with a map that cannot stand in, or asked for strictness, the cut answer stays an error."""
    puzzle = _kropki_puzzle()
    text = rules_answer(puzzle)
    kropki = map_text(puzzle, "kropki")
    for cut_at in (len(text) // 2, len(text) - 30, text.index('"cells"', len(text) // 3)):
        problems: list[str] = []
        read = read_answers(text[:cut_at], digits_answer(puzzle), {"kropki": kropki}, problems)
        assert same_rules(read, puzzle) and read.givens == puzzle.givens
        assert len(problems) == 1 and "\n" not in problems[0]
        assert problems[0].startswith("the model's rules answer breaks off inside its kropki rules")
        with pytest.raises(ModelOutputError, match="breaks off inside its JSON object"):
            read_answers(text[:cut_at], digits_answer(puzzle), {"kropki": kropki})  # no place to say it: strict
        with pytest.raises(ModelOutputError, match="breaks off inside its JSON object"):
            read_answers(text[:cut_at], digits_answer(puzzle), {}, [])
        with pytest.raises(ModelOutputError, match="its kropki map cannot stand in for those rules .*map shows none"):
            read_answers(text[:cut_at], digits_answer(puzzle), {"kropki": "." * 9 + "\n" + ("." * 9 + "\n") * 8}, [])


def test_only_a_cut_inside_the_list_of_rules_is_read_on() -> None:
    from vlm_sudoku.runtime.answers import cut_rules_answer

    whole = '{"size":4,"rules":[{"type":"odd","cells":["r1c1"]},{"type":"kropki","color":"white","cells":["r1c1","r1c2"]}]}'
    cut = cut_rules_answer(whole[:-25])
    assert cut is not None and cut.unread == ("kropki",) and [c.rule for c in cut.puzzle.constraints] == ["odd"]
    assert cut.cut
    cut = cut_rules_answer(whole[: whole.index("kropki") - 5])  # the break hides the next rule's type
    assert cut is not None and cut.unread == ("odd",)
    assert cut_rules_answer(whole[:12]) is None  # before the list
    assert cut_rules_answer(whole[:-1]) is None  # after it: not a cut list
    assert cut_rules_answer('{"size":4,"rules":[{"type":"odd","cells":["r5c1"]},{"ty') is None  # not a puzzle


def test_the_pipeline_asks_for_the_map_of_the_layer_a_rules_answer_broke_off_in() -> None:
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Pipeline

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=False)

    pipeline = Pipeline.load(default_model_dir(), provider="cpu", check_reading=False, views=1)
    assert "kropki" in pipeline.map_layers
    text = rules_answer(_kropki_puzzle())
    assert pipeline.map_questions({"rules": said(text)}) == ("map:kropki",)
    assert pipeline.map_questions({"rules": said(text[: len(text) // 2])}) == ("map:kropki",)
    no_map = '{"size":9,"rules":[{"type":"antiknight"},{"type":"extra_region","cells":["r1c1","r2c2"'
    assert pipeline.map_questions({"rules": said(no_map)}) == ()  # (no map holds extra regions)


def _thermo_and_jigsaw_puzzle() -> Puzzle:
    """A generated 9x9 puzzle with irregular regions and at least two thermometers of three cells or more."""
    for seed in range(400):
        puzzle = sample_puzzle(random.Random(seed), kinds=("thermo",), sizes=(9,))[0]
        thermos = [c for c in puzzle.constraints if isinstance(c, Thermo)]
        if puzzle.box is None and len(thermos) >= 2 and all(len(t.line) >= 3 for t in thermos):
            return puzzle
    raise AssertionError("no generated jigsaw + thermo puzzle")


def _walked_twice(text: str, first: str) -> str:
    """``text`` with the thermometer that starts at ``first`` walking back onto its first cell at its end
    (a thermometer the model wrote so in run 17)."""
    head = f'"cells":["{first}",'
    at = text.index(head)
    end = text.index("]", at)
    return text[:end] + f',"{first}"' + text[end:]


def test_a_rules_answer_with_invalid_rules_of_a_mapped_layer_is_read_with_that_layers_map() -> None:
    """The model names a thermometer and walks through one of its cells twice. The thermo map replaces every
    thermometer's cells anyway, so the reading is the whole puzzle with one problem line; so for regions that are
    not n regions of n cells and a regions map. Strict, without the map, or with a map that shows none, it stays
    an error, and a rule no map holds is never left out."""
    from vlm_sudoku.runtime.answers import invalid_rules_answer

    puzzle = _thermo_and_jigsaw_puzzle()
    first = next(c for c in puzzle.constraints if isinstance(c, Thermo)).line[0]
    text = _walked_twice(rules_answer(puzzle), f"r{first[0] + 1}c{first[1] + 1}")
    maps = {layer: map_text(puzzle, layer) for layer in ("regions", "thermo")}
    problems: list[str] = []
    read = read_answers(text, digits_answer(puzzle), maps, problems)
    assert same_rules(read, puzzle) and read.givens == puzzle.givens
    assert len(problems) == 1 and "\n" not in problems[0]
    assert problems[0].startswith("the model's rules answer gives thermo rules that are not valid (")
    assert problems[0].endswith("the thermo rules are its map's")
    part = invalid_rules_answer(text)
    assert part is not None and part.unread == ("thermo",) and not part.cut
    assert len([c for c in part.puzzle.constraints if isinstance(c, Thermo)]) == len(
        [c for c in puzzle.constraints if isinstance(c, Thermo)]) - 1  # the others are kept
    with pytest.raises(ModelOutputError, match="rules are not valid .*lists a cell twice"):
        read_answers(text, digits_answer(puzzle), maps)  # no place to say it: strict
    with pytest.raises(ModelOutputError, match="rules are not valid"):
        read_answers(text, digits_answer(puzzle), {"regions": maps["regions"]}, [])
    with pytest.raises(ModelOutputError, match="its thermo map cannot stand in for those rules .*map shows none"):
        read_answers(text, digits_answer(puzzle), {**maps, "thermo": "." * 9 + "\n" + ("." * 9 + "\n") * 8}, [])

    regions = rules_answer(puzzle).replace('"regions":["', '"regions":["1', 1)  # a row of ten symbols
    problems = []
    read = read_answers(regions, digits_answer(puzzle), maps, problems)
    assert same_rules(read, puzzle) and len(problems) == 1 and "gives regions rules that are not valid" in problems[0]

    assert invalid_rules_answer(rules_answer(puzzle)) is None  # nothing invalid
    no_map = '{"size":9,"rules":[{"type":"antiknight"},{"type":"extra_region","cells":["r1c1","r1c1"]}]}'
    assert invalid_rules_answer(no_map) is not None
    with pytest.raises(ModelOutputError, match="rules are not valid"):
        read_answers(no_map, digits_answer(puzzle), maps, [])  # (no map holds extra regions)
    assert invalid_rules_answer('{"size":9,"rules":[{"type":"teleport","cells":["r1c1"]}]}') is None


def test_a_cut_rules_answer_whose_regions_are_not_valid_is_read_with_the_regions_map_too() -> None:
    """A jigsaw answer whose regions are a cell off and whose list of rules breaks off (run 19 on a jigsaw
    kropki render: 512 tokens of dots): both the regions map and the cut layer's map stand in."""
    from vlm_sudoku.runtime.answers import cut_rules_answer

    puzzle = _thermo_and_jigsaw_puzzle()
    text = rules_answer(puzzle)
    first = puzzle.regions[0][0]
    other = next(v for v in puzzle.regions[0] if v != first)
    text = text.replace('"regions":["' + str(first + 1), '"regions":["' + str(other + 1), 1)  # sizes n-1 and n+1
    cut_at = text.index('"cells"', text.index('"thermo"') + 30)
    part = cut_rules_answer(text[:cut_at])
    assert part is not None and part.unread == ("regions", "thermo") and part.cut
    maps = {layer: map_text(puzzle, layer) for layer in ("regions", "thermo")}
    problems: list[str] = []
    read = read_answers(text[:cut_at], digits_answer(puzzle), maps, problems)
    assert same_rules(read, puzzle) and len(problems) == 1
    assert "breaks off inside its thermo rules, and its regions are not valid (regions must be" in problems[0]
    with pytest.raises(ModelOutputError, match="breaks off inside its JSON object"):
        read_answers(text[:cut_at], digits_answer(puzzle), {"thermo": maps["thermo"]}, [])  # no regions map


def test_the_pipeline_asks_for_the_maps_of_the_layers_whose_rules_are_not_valid() -> None:
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Pipeline

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    pipeline = Pipeline.load(default_model_dir(), provider="cpu", check_reading=False, views=1)
    text = rules_answer(_thermo_and_jigsaw_puzzle())
    one = '{"size":9,"rules":[{"type":"thermo","cells":["r1c1","r1c2","r1c1"]}]}'
    assert pipeline.map_questions({"rules": said(one)}) == ("map:thermo",)
    bad_regions = text.replace('"regions":["', '"regions":["1', 1)
    assert pipeline.map_questions({"rules": said(bad_regions)}) == ("map:regions", "map:thermo")
    no_map = '{"size":9,"rules":[{"type":"thermo","cells":["r1c1","r1c2","r1c1"]},{"type":"extra_region","cells":["r1c1","r1c1"]}]}'
    assert pipeline.map_questions({"rules": said(no_map)}) == ()


def test_maps_of_several_views_are_voted_cell_by_cell() -> None:
    """Each cell's code as most views write it, the first view's where they tie; a view of another shape is left
    out, and a first answer that is no map comes back as it is (with_maps says why)."""
    from vlm_sudoku.runtime.marks_map import voted_map

    first, second, third = "X17K.\nK..\n...", "X12K.\nK..\n.K.", "X12K.\nV..\n.H."
    assert voted_map([first, second, third], "killer") == "X12K.\nK..\n..."
    assert voted_map([first, second], "killer") == first  # two that differ: the first's
    assert voted_map([first, "X12K.\nK.", third], "killer") == first  # the second left out: first and third tie
    assert voted_map(["no map here", second, second], "killer") == "no map here"
    assert voted_map(["Here:\n" + first, second, second], "killer") == second
    outside = ["S12...\n....\n....\n..DR3+S4.", "S12...\n....\n....\n..DR8+S4.", "S13...\n....\n....\n..DR8+S4."]
    assert voted_map(outside, "outside") == "S12...\n....\n....\n..DR8+S4."



def test_where_the_voted_cells_are_no_map_the_first_view_whose_map_is_one_is_taken() -> None:
    """Three views of one arrow map (run 18 drew these): the cells voted from paths that differ step off the line,
    so the second view's map, the one that reads, is taken; where no view's map reads, the vote stands."""
    from vlm_sudoku.runtime.marks_map import voted_map

    top = "....2....\n....1....\n...5.....\n........2\n........1\n.......1.\n....5.5..\n"
    views = [top + ".344..5..\n.....94..", top + ".669..5..\n.....94..", top + ".3.9..5..\n.....94.."]
    with pytest.raises(ModelOutputError, match="steps off the lines"):
        read_map(top + ".349..5..\n.....94..", "arrow", 9)  # the cell-by-cell vote
    assert voted_map(views, "arrow") == views[1]
    broken = [v.replace("....5.5..", "....5....") for v in views]  # no view's map reads now
    assert voted_map(broken, "arrow") == top.replace("....5.5..", "....5....") + ".349..5..\n.....94.."


def test_a_reading_of_several_views_votes_its_maps_and_the_pipeline_asks_them_of_every_view() -> None:
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Pipeline, Reading
    from vlm_sudoku.tools.render import render

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    reading = Reading(encoded=[], prefix_tokens=0, prefix_s=0.0, answers={
        "rules": said("{}"), "map:odd_even": said("1...\n....\n....\n...."), "map:thermo": said("6...\n" + "....\n" * 3)},
        more_maps=[{"odd_even": "2...\n....\n....\n....", "thermo": "3...\n" + "....\n" * 3},
                   {"odd_even": "2...\n....\n....\n...."}])
    assert reading.maps() == {"odd_even": "2...\n....\n....\n....", "thermo": "6...\n....\n....\n...."}

    puzzle = sample_puzzle(random.Random(3), kinds=("thermo",), sizes=(9,))[0]
    pipeline = Pipeline.load(default_model_dir(), provider="cpu", views=3)
    reading = pipeline.read_image(render(puzzle, random.Random(3), style="app").image)
    asked = {q.removeprefix("map:") for q in reading.answers if q.startswith("map:")}
    assert asked and len(reading.more_maps) == 2 and all(set(more) == asked for more in reading.more_maps)
