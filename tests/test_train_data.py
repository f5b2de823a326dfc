"""Training data for the embedded model: the fixed photo split and sample/label alignment."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vlm_sudoku.runtime.answers import parse_digits_answer, parse_rules_answer
from vlm_sudoku.tools.train.data import IGNORE, LABEL_COLUMNS, TEXT_COLUMNS, Mix, SampleMaker, collate
from vlm_sudoku.tools.train.loop import _Indexed, lr_at
from vlm_sudoku.tools.train.photos import VALIDATION_PHOTOS, load_photos, split

from .paths import PHOTOS


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos_train is not checked out")
def test_photo_split_is_fixed_and_by_puzzle() -> None:
    photos = load_photos(PHOTOS)
    train, val = split(photos)
    assert (len(train), len(val)) == (128, 32)
    assert {p.path.name for p in val} == VALIDATION_PHOTOS
    assert not {p.givens for p in train} & {p.givens for p in val}  # no validation puzzle is seen in training


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos_train is not checked out")
def test_the_training_split_is_copied_for_the_gpu_machine_without_a_validation_photo(tmp_path) -> None:
    from vlm_sudoku.tools.train.photos import copy_training_split

    assert copy_training_split(tmp_path / "photos", PHOTOS) == 128
    names = {f.name for f in (tmp_path / "photos").iterdir()}
    assert len(names) == 2 * 128 + 1 and "outlines.csv" in names and not names & VALIDATION_PHOTOS
    train, val = split(load_photos(tmp_path / "photos"))
    assert (len(train), len(val)) == (128, 0)


def _segments(sample) -> list[list[int]]:
    """The supervised runs of a sample: one per assistant answer."""
    runs, cur = [], []
    for token, label in zip(sample.input_ids, sample.labels):
        if label == IGNORE:
            if cur:
                runs.append(cur)
                cur = []
        else:
            assert label == token
            cur.append(token)
    return runs + ([cur] if cur else [])


@pytest.mark.parametrize("photo_rate", [0.0, 1.0])
def test_samples_supervise_only_the_answers(tiny_qwen2_vl_dir, photo_rate: float) -> None:
    if photo_rate and not PHOTOS.is_dir():
        pytest.skip("no photos")
    maker = SampleMaker(tiny_qwen2_vl_dir, seed=3, mix=Mix(photo_rate=photo_rate), photos_dir=PHOTOS)
    seen = set()
    for index in range(12):
        s = maker(index)
        seen.add(s.question)
        assert s.source == ("photo" if photo_rate else "render")
        assert s.input_ids.count(maker.tok.specials.image_pad) == int(s.grid_thw.prod()) // 4
        runs = _segments(s)
        assert runs and all(run[-1] == maker.tok.specials.im_end for run in runs)
        assert s.input_ids[-1] == maker.tok.specials.im_end  # the conversation ends on an answer
        texts = [maker.tok.decode(run[:-1]) for run in runs]
        if s.question == "digits":
            parse_digits_answer(texts[0], len(texts[0].split("\n")))
        elif s.question == "rules":
            parse_rules_answer(texts[0])
        elif s.question == "cells":
            assert len(texts) == maker.mix.cell_turns and all(len(t) == 1 for t in texts)
        else:
            assert len(texts) == 1 and len(texts[0]) in (4, 6, 9, 16)
        again = maker(index)  # a sample is a pure function of (seed, index)
        assert again.input_ids == s.input_ids and (again.pixel_values == s.pixel_values).all()
    assert len(seen) >= 3


def test_a_context_view_model_trains_on_both_images(tiny_qwen2_vl_dir, tmp_path) -> None:
    """A model folder with a context view gets samples with the whole picture then the grid view, the read-out
    labels covering the grid view's cells and the context view's rule text (TEXT_COLUMNS, where a render drew
    some: 0/1, IGNORE in every other column of its tokens), and the batch goes through Qwen2-VL's forward with both."""
    import json
    import shutil

    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from vlm_sudoku.runtime.grid_view import CONFIG_KEY

    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen2_vl_dir, folder)
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    pre[CONFIG_KEY] = {"size": 224, "margin": 20, "context": 168}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    maker = SampleMaker(folder, seed=5, mix=Mix(photo_rate=0.0), photos_dir=None)
    samples = [maker(i) for i in range(3)]
    for s in samples:
        assert s.grid_thw.shape == (2, 3) and tuple(s.grid_thw[1]) == (1, 16, 16)
        assert max(s.grid_thw[0, 1:]) * 14 <= 168 + 28
        tokens = [int(row.prod()) // 4 for row in s.grid_thw]
        assert s.input_ids.count(maker.tok.specials.image_pad) == sum(tokens)
        assert s.token_labels is not None and len(s.token_labels) == sum(tokens)
        context = s.token_labels[:tokens[0]]
        assert (np.delete(context, np.arange(LABEL_COLUMNS)[TEXT_COLUMNS], axis=1) == IGNORE).all()
        assert set(np.unique(context[:, TEXT_COLUMNS])) <= {0, 1} and (s.token_labels[tokens[0]:] >= 0).any()
    if PHOTOS.is_dir():  # training photos get the whole (retaken) photo as their context view too
        photo = SampleMaker(folder, seed=5, mix=Mix(photo_rate=1.0), photos_dir=PHOTOS)(0)
        assert photo.source == "photo" and photo.grid_thw.shape == (2, 3)
        samples.append(photo)
    batch = collate(samples, pad_id=maker.tok.specials.endoftext)
    model = Qwen2VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"])
    assert torch.isfinite(out.loss)


def test_collate_pads_right_and_stacks_images(tiny_qwen2_vl_dir) -> None:
    maker = SampleMaker(tiny_qwen2_vl_dir, seed=1, mix=Mix(photo_rate=0.0), photos_dir=None)
    samples = [maker(i) for i in range(3)]
    batch = collate(samples, pad_id=maker.tok.specials.endoftext)
    longest = max(len(s.input_ids) for s in samples)
    assert batch["input_ids"].shape == (3, longest)
    assert int(batch["attention_mask"].sum()) == sum(len(s.input_ids) for s in samples)
    assert batch["pixel_values"].shape[0] == sum(len(s.pixel_values) for s in samples)
    assert batch["image_grid_thw"].shape == (3, 3)


def test_learning_rate_schedule() -> None:
    lrs = [lr_at(s, 1000, 1e-3, 100) for s in range(1000)]
    assert lrs[0] < lrs[50] < lrs[99] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:]))
    assert lrs[-1] == pytest.approx(5e-5, rel=0.05)


def test_cell_labels_name_the_cell_under_each_token() -> None:
    """With exact corners, the token at the centre of cell (r, c) is labelled with that cell."""
    from vlm_sudoku.runtime.grid_view import GridView
    from vlm_sudoku.tools.render import sample
    from vlm_sudoku.tools.train.data import cell_labels, join_bits, marking_bits

    item = sample(5, sizes=(4,), styles=("app",))
    view = GridView(448, 40)
    labels = cell_labels(view, item.corners, item.corners, item.puzzle, 28)
    assert labels.shape == (256, LABEL_COLUMNS)
    grid = labels.reshape(16, 16, LABEL_COLUMNS)
    assert (grid[0, :, 0] == IGNORE).all() and (grid[:, 0, 0] == IGNORE).all()  # the margin
    cell = 368 / 4
    for r in range(4):
        for c in range(4):
            i, j = int((40 + (r + 0.5) * cell) // 28), int((40 + (c + 0.5) * cell) // 28)
            region = item.puzzle.regions[r][c] - min(min(row) for row in item.puzzle.regions)
            assert tuple(grid[i, j, :4]) == (item.puzzle.givens[r][c], r, c, region)
            bits = (*marking_bits(item.puzzle)[r, c], *join_bits(item.puzzle)[r, c])
            assert tuple(grid[i, j, 4:4 + len(bits)]) == bits and (grid[i, j, 4 + len(bits):] == IGNORE).all()


def test_marking_bits_follow_the_rules_cells() -> None:
    """A killer cage marks its cells, a kropki dot both cells of its pair, a diagonal its line; rules drawn
    outside the grid or not drawn at all mark nothing."""
    from vlm_sudoku.solver.rules_json import read_rules
    from vlm_sudoku.tools.train.data import MARKINGS, marking_bits

    puzzle = read_rules({"size": 9, "rules": [
        {"type": "killer", "cells": ["r1c1", "r1c2"], "sum": 7},
        {"type": "kropki", "color": "white", "cells": ["r5c5", "r5c6"]},
        {"type": "diagonal-"}, {"type": "antiknight"}, {"type": "odd", "cells": ["r9c1"]}]})
    bits = marking_bits(puzzle)
    on = {(r, c, MARKINGS[k]) for r, c, k in zip(*np.nonzero(bits))}
    assert on == ({(0, 0, "killer"), (0, 1, "killer"), (4, 4, "kropki"), (4, 5, "kropki"), (8, 0, "odd_even")}
                  | {(i, i, "diagonal") for i in range(9)})


def test_join_bits_say_which_neighbours_share_a_cage_or_a_line() -> None:
    """A cage joins each cell to its right and lower neighbours in it; a line (whichever end it is written from,
    an arrow from its bulb) joins each cell to the next one, labelled at the one first in reading order."""
    from vlm_sudoku.solver.rules_json import read_rules
    from vlm_sudoku.tools.train.data import JOINS, join_bits

    puzzle = read_rules({"size": 9, "rules": [
        {"type": "killer", "cells": ["r1c1", "r1c2", "r2c2"], "sum": 12},
        {"type": "thermo", "cells": ["r5c5", "r4c4", "r4c5"]},
        {"type": "arrow", "bulb": ["r7c3"], "line": ["r8c2", "r9c2"]},
        {"type": "kropki", "color": "white", "cells": ["r1c8", "r1c9"]}, {"type": "antiknight"}]})
    bits = join_bits(puzzle)
    on = {(r, c, JOINS[k]) for r, c, k in zip(*np.nonzero(bits))}
    assert on == {(0, 0, "cage_right"), (0, 1, "cage_down"),
                  (3, 3, "line_down_right"), (3, 3, "line_right"),
                  (6, 2, "line_down_left"), (7, 1, "line_down")}


def test_text_labels_mark_the_tokens_on_each_rule_s_words() -> None:
    """A screenshot of an anti-king puzzle (flat: the grid's corners map its whole plane): the context view's tokens
    that carry the anti-king bit are those on the rules text, beside or under the grid and never inside it; no
    token names a rule the puzzle does not have; and a render without rule text labels every token 0."""
    from vlm_sudoku.runtime.grid_view import UNIT_SQUARE, apply_perspective, perspective_coefficients
    from vlm_sudoku.runtime.preprocess import ImageSettings, preprocess
    from vlm_sudoku.tools.render import render
    from vlm_sudoku.tools.render.puzzles import sample_puzzle
    from vlm_sudoku.tools.train.data import TEXT_GROUPS, text_labels

    settings = ImageSettings()
    for seed in range(40):
        rng = random.Random(seed)
        puzzle, _ = sample_puzzle(rng, sizes=(9,), kinds=("antiking",))
        drawn = render(puzzle, rng, style="app")
        if drawn.details["layout"] == "screenshot":
            break
    lines = drawn.details["rule_lines"]
    assert lines and all(set(groups) <= {"antiking"} for groups, _box in lines)
    context = drawn.image.resize((drawn.image.width // 2, drawn.image.height // 2))
    _, grid = preprocess(context, settings)
    labels = text_labels(drawn.image.size, grid[0], drawn.corners, lines)
    _, gh, gw = grid[0]
    assert labels.shape == (gh // 2 * gw // 2, LABEL_COLUMNS)
    bits = labels[:, TEXT_COLUMNS]
    king = TEXT_GROUPS.index("antiking")
    assert bits[:, king].sum() >= 3 and bits.sum() == bits[:, king].sum()
    on = np.nonzero(bits[:, king])[0]
    x = (on % (gw // 2) + 0.5) * 28 * drawn.image.width / (gw * 14)
    y = (on // (gw // 2) + 0.5) * 28 * drawn.image.height / (gh * 14)
    u, v = apply_perspective(perspective_coefficients(drawn.corners, UNIT_SQUARE), x, y)
    assert not ((u > 0.05) & (u < 0.95) & (v > 0.05) & (v < 0.95)).any()  # never well inside the grid
    assert ((u > 1) | (v > 1)).mean() > 0.5  # the rules block is under the grid or to its right
    blank = text_labels(drawn.image.size, grid[0], drawn.corners, [])
    assert (blank[:, TEXT_COLUMNS] == 0).all()


def test_a_paragraph_of_rules_gives_each_wrapped_line_the_rules_it_states() -> None:
    from vlm_sudoku.tools.render.scene import _groups_of_lines

    said = [(None, "Normal sudoku rules apply."), ("antiking", "Diagonally touching cells cannot contain the same digit."),
            ("thermo", "Digits along a thermometer increase from the bulb end.")]
    wrapped = ["Normal sudoku rules apply. Diagonally", "touching cells cannot contain", "the same digit. Digits along",
               "a thermometer increase from the", "bulb end."]
    assert _groups_of_lines(said, wrapped) == [("antiking",), ("antiking",), ("antiking", "thermo"), ("thermo",),
                                               ("thermo",)]


def test_read_out_head_learns_markings_and_widens_an_older_head(tmp_path) -> None:
    """The head's loss covers the classes and the marking bits (and ignores what is unlabelled); an older
    head (symbol, row, column only) loads into the wider one, its rows kept."""
    import torch

    from vlm_sudoku.tools.train.loop import AuxHead

    class Visual(torch.nn.Module):
        def forward(self, x):
            return x

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = Visual()
            self.config = type("C", (), {"vision_config": type("V", (), {"hidden_size": 8})()})()

    model = Model()
    head = AuxHead(model, "cpu")
    features = torch.randn(5, 8)
    labels = torch.full((5, LABEL_COLUMNS), IGNORE)
    model.visual(features)
    assert head.loss(labels) is None  # nothing labelled
    labels[:, 4:13] = torch.tensor([[1, 0, 0, 0, 0, 0, 0, 0, 1]] * 5)  # markings only (e.g. cells of a blank view)
    model.visual(features)
    marks_only = head.loss(labels)
    assert marks_only is not None and marks_only.requires_grad
    glyphs = torch.full((5, LABEL_COLUMNS), IGNORE)
    glyphs[:, -1] = torch.tensor([0, 0, 3, 8, 0])  # a clue crop's tokens: no digit, or 1 + the digit under it
    model.visual(features)
    glyph_loss = head.loss(glyphs)
    glyph_loss.backward()
    grad = head.linear.weight.grad.abs().sum(1)
    glyph_rows = slice(49 + 16 + 9, 49 + 16 + 9 + 11)
    assert glyph_loss is not None and (grad[glyph_rows] > 0).all() and (grad[:glyph_rows.start] == 0).all()
    assert (grad[glyph_rows.stop:] == 0).all()  # its own rows only
    head.linear.weight.grad = None
    joins = torch.full((5, LABEL_COLUMNS), IGNORE)
    joins[:, 13:19] = torch.tensor([[1, 0, 0, 0, 1, 0]] * 2 + [[0, 0, 0, 0, 0, 0]] * 3)  # cage and line joins
    model.visual(features)
    head.loss(joins).backward()
    grad = head.linear.weight.grad.abs().sum(1)
    join_rows = slice(49 + 16 + 9 + 11, 49 + 16 + 9 + 11 + 6)
    assert (grad[join_rows] > 0).all() and (grad[:join_rows.start] == 0).all() and (grad[join_rows.stop:] == 0).all()
    head.linear.weight.grad = None
    text = torch.full((5, LABEL_COLUMNS), IGNORE)
    text[:, TEXT_COLUMNS] = 0
    text[1, TEXT_COLUMNS.start + 16] = 1  # a context view's token on the words of one rule
    model.visual(features)
    head.loss(text).backward()
    grad = head.linear.weight.grad.abs().sum(1)
    assert (grad[-22:] > 0).all() and (grad[:-22] == 0).all()  # the text rows, last
    head.linear.weight.grad = None
    old = torch.nn.Linear(8, 17 + 16 + 16)
    torch.save(old.state_dict(), tmp_path / "aux_head.pt")
    assert not head.load(tmp_path / "aux_head.pt")
    assert torch.equal(head.linear.weight[:49], old.weight) and head.linear.weight.shape[0] == 49 + 16 + 9 + 11 + 6 + 22
    torch.save(head.linear.state_dict(), tmp_path / "wide.pt")
    assert AuxHead(Model(), "cpu").load(tmp_path / "wide.pt")


def test_marking_loss_weighs_rare_markings_up_to_the_cells_without_them() -> None:
    """A marking on 1 cell in 20: the unweighted loss is lowest when the head says "none" everywhere
    (constant logit log(1/19)); the balanced one is lowest at even odds, so saying "none" costs. Unknown
    bits (IGNORE) change nothing."""
    import torch

    from vlm_sudoku.tools.train.loop import AuxHead

    bits = torch.zeros(20, 2, dtype=torch.long)
    bits[0, 0] = 1  # marking 0: one positive in 20; marking 1: none at all
    grid = torch.linspace(-4, 4, 161)
    losses = [float(AuxHead.marking_loss(torch.full((20, 1), float(c)), bits[:, :1])) for c in grid]
    assert abs(float(grid[int(torch.tensor(losses).argmin())])) < 0.06
    plain = [float(torch.nn.functional.binary_cross_entropy_with_logits(torch.full((20,), float(c)), bits[:, 0].float()))
             for c in grid]
    assert float(grid[int(torch.tensor(plain).argmin())]) < -2.5
    padded = torch.cat([bits, torch.full((7, 2), IGNORE)])
    logits = torch.randn(27, 2)
    assert torch.allclose(AuxHead.marking_loss(logits[:20], bits), AuxHead.marking_loss(logits, padded))


def test_several_gpus_draw_the_samples_of_one() -> None:
    """Under torchrun each process takes its batch of every global step: together, the indices one
    process would draw, each once and in order, so a run's data does not depend on the number of GPUs."""
    batch, steps, start = 4, 5, 96
    alone = [_Indexed(None, start, 10**6, batch=batch).index(i) for i in range(batch * steps * 2)]
    shares = [[_Indexed(None, start, 10**6, batch=batch, rank=r, world=2).index(i) for i in range(batch * steps)]
              for r in range(2)]
    merged = [x for step in range(steps) for r in range(2) for x in shares[r][step * batch:(step + 1) * batch]]
    assert merged == alone == list(range(start, start + batch * steps * 2))


def test_training_with_a_context_view_exports_a_model_that_declares_it(tiny_qwen2_vl_dir, tmp_path) -> None:
    """`train.loop --context-view` (with the few-clues curriculum and the marks-map question): three steps on the
    CPU from a grid-view base; the checkpoint and the exported folder say so (the folder declares the trained
    marks-map layers), and the base folder itself is left as it was. A base that reads whole pictures cannot take
    a context view."""
    import json
    import shutil
    import subprocess
    import sys

    from vlm_sudoku.runtime.grid_view import CONFIG_KEY, load_grid_view
    from vlm_sudoku.runtime.marks_map import load_layers
    from vlm_sudoku.tools.train.data import TRAINED_LAYERS

    def loop(*args: str) -> subprocess.CompletedProcess:  # a process of its own: the loop ends in os._exit
        return subprocess.run([sys.executable, "-m", "vlm_sudoku.tools.train.loop", *args], capture_output=True,
                              text=True, timeout=600)

    base = tmp_path / "base"
    shutil.copytree(tiny_qwen2_vl_dir, base)
    pre = json.loads((base / "preprocessor_config.json").read_text())
    (base / "preprocessor_config.json").write_text(json.dumps({**pre, CONFIG_KEY: {"size": 224, "margin": 20}}))
    args = ["--base", str(base), "--ckpt", str(tmp_path / "ckpt"), "--minutes", "2", "--total-steps", "3",
            "--batch", "2", "--workers", "0", "--warmup", "1", "--photo-rate", "0", "--final-out", str(tmp_path / "out")]
    result = loop(*args, "--context-view", "168", "--few-clues", "0.5", "--marks", "0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    state = json.loads((tmp_path / "out" / "w32" / "state.json").read_text())
    assert state["step"] == 3 and state["config"]["context_view"] == 168 and state["config"]["few_clues"] == 0.5
    assert state["config"]["marks"] == 0.5
    assert load_grid_view(tmp_path / "out" / "hf").context == 168
    assert load_layers(tmp_path / "out" / "hf") == TRAINED_LAYERS
    assert load_grid_view(base).context == 0 and load_layers(base) == ()
    shutil.copy2(tiny_qwen2_vl_dir / "preprocessor_config.json", base / "preprocessor_config.json")
    refused = loop(*args, "--context-view", "168")
    assert refused.returncode == 2 and "needs a grid view" in refused.stderr
    refused = loop(*args, "--clue-pictures", "0.2")  # crop pictures with no crop weight would ask no crop
    assert refused.returncode == 2 and "--clue-pictures draws clue crops" in refused.stderr

    # the fp32 checkpoint carries its tokenizer, and continuing it with a base whose tokenizer numbers the tokens
    # otherwise is refused
    assert (tmp_path / "out" / "w32" / "vocab.json").read_bytes() == (base / "vocab.json").read_bytes()
    other = tmp_path / "other_base"
    shutil.copytree(tmp_path / "out" / "hf", other)
    vocab = json.loads((other / "vocab.json").read_text())
    (a, i), (b, j) = list(vocab.items())[300:302]
    (other / "vocab.json").write_text(json.dumps({**vocab, a: j, b: i}))
    cont = ["--ckpt", str(tmp_path / "out" / "w32"), "--minutes", "2", "--total-steps", "1", "--batch", "2",
            "--workers", "0", "--photo-rate", "0"]
    refused = loop("--base", str(other), *cont)
    assert refused.returncode == 1 and "vocab.json differs from the base's" in refused.stderr


def test_the_few_clues_curriculum_asks_for_puzzles_with_one_or_two_of_each_marking(tiny_qwen2_vl_dir) -> None:
    """Mix.few_clues = 1: every variant puzzle drawn is the one the plain recipe draws, with at most two clues
    of each marking left."""
    import random
    from collections import Counter

    few = SampleMaker(tiny_qwen2_vl_dir, seed=2, mix=Mix(photo_rate=0.0, kinds="killer,thermo,arrow", few_clues=1.0),
                      photos_dir=None)
    plain = SampleMaker(tiny_qwen2_vl_dir, seed=2, mix=Mix(photo_rate=0.0, kinds="killer,thermo,arrow"), photos_dir=None)
    counts = []
    for attempt in range(6):
        _images, puzzle, _labels, _title, _located, _lines = few._puzzle_image(random.Random(attempt), easy=False)
        counts.append(Counter(c.rule for c in puzzle.constraints))
        _images, whole, _labels, _title, _located, _lines = plain._puzzle_image(random.Random(attempt), easy=False)
        assert set(puzzle.constraints) <= set(whole.constraints)  # the same puzzle drawn, then cut
    assert all(n <= 2 for c in counts for n in c.values()) and any(counts)


def test_the_marks_question_is_asked_of_puzzles_with_markings_and_answered_with_their_map(tiny_qwen2_vl_dir) -> None:
    """With the marks-map question weighted, a puzzle with markings is asked one of its layers and its label
    is that layer's map (the runtime's own writer); a classic puzzle is asked another question instead (here the
    rules, the only other one weighted). A recipe without a weight for every question is refused."""
    import random

    from vlm_sudoku.runtime.marks_map import map_text
    from vlm_sudoku.runtime.prompts import MAP_QUESTIONS
    from vlm_sudoku.tools.render.puzzles import parse_kinds, sample_puzzle
    from vlm_sudoku.tools.train.data import _mapped_layers

    maker = SampleMaker(tiny_qwen2_vl_dir, seed=4, mix=Mix(photo_rate=0.0, questions=(0, 1, 0, 0, 9),
                                                           kinds="classic,killer,thermo,sandwich"), photos_dir=None)
    asked = set()
    for i in range(24):
        sample = maker(i)
        text = maker.tok.decode(sample.input_ids)
        layer = next((k.removeprefix("map:") for k, q in MAP_QUESTIONS.items() if q in text), None)
        if sample.question == "marks":
            answer = maker.tok.decode([t for t in sample.labels if t >= 0][:-1])
            rows = len(answer.splitlines()) - 2 * (layer == "outside")  # (the ring of places around the grid)
            assert layer is not None and rows in (4, 6, 9, 16)
            asked.add(layer)
        else:
            assert sample.question == "rules" and layer is None
    assert asked >= {"killer", "outside"}
    classic, _ = sample_puzzle(random.Random(0), kinds=parse_kinds("classic"))
    killer, _ = sample_puzzle(random.Random(0), kinds=("killer",), sizes=(9,))
    assert _mapped_layers(classic) == [] and "killer" in _mapped_layers(killer)
    assert map_text(killer, "killer") is not None
    with pytest.raises(ValueError, match="needs a weight for each of digits, rules, cells, row, marks"):
        Mix(questions=(1, 0, 0, 0))


def test_several_questions_about_one_picture_are_consecutive_samples(tiny_qwen2_vl_dir) -> None:
    """With per_picture k, samples k*j .. k*j+k-1 are questions about one drawn picture (the costly part, drawn
    once per worker) and the next k another picture; a sample is still a pure function of (seed, index),
    whatever the worker made before it. k = 1 draws a picture per sample."""
    mix = Mix(photo_rate=0.0, questions=(1, 1, 1, 1, 1), per_picture=3, kinds="classic,killer,thermo", sizes=(4, 6))
    maker = SampleMaker(tiny_qwen2_vl_dir, seed=5, mix=mix, photos_dir=None)
    samples = [maker(i) for i in range(9)]
    for j in range(3):
        group = samples[3 * j:3 * j + 3]
        assert all(np.array_equal(group[0].pixel_values, s.pixel_values) for s in group[1:])
        assert len({s.question for s in group}) == 3  # no question asked twice of one picture while kinds are left
    assert not np.array_equal(samples[0].pixel_values, samples[3].pixel_values)
    assert len({tuple(s.input_ids) for s in samples}) == 9 and len({s.question for s in samples}) > 1
    fresh = SampleMaker(tiny_qwen2_vl_dir, seed=5, mix=mix, photos_dir=None)(4)  # no picture cached before it
    assert fresh.input_ids == samples[4].input_ids and np.array_equal(fresh.pixel_values, samples[4].pixel_values)
    single = SampleMaker(tiny_qwen2_vl_dir, seed=5, mix=Mix(photo_rate=0.0, kinds="classic"), photos_dir=None)
    assert not np.array_equal(single(0).pixel_values, single(1).pixel_values)


def test_the_title_drill_asks_for_the_words_heading_a_rules_text_the_picture_must_show(tiny_qwen2_vl_dir) -> None:
    """With the title drill weighted, a picture whose rules text must be shown (a rule that leaves no mark) is
    asked the title of that text, and the label is the title drawn (render details: the same words the
    renderer's titles give); a picture without one is asked the others. Weight 0 never asks it."""
    from vlm_sudoku.tools.render import sample
    from vlm_sudoku.tools.render.text import TITLES
    from vlm_sudoku.tools.train.data import TITLE_QUESTION

    shown = sample(3, sizes=(9,), kinds="antiknight")
    assert shown.details["rules_title"] and any(name in shown.details["rules_title"] for name in TITLES["antiknight"])
    assert sample(3, sizes=(9,), kinds="classic").details.get("rules_title") is None

    mix = Mix(photo_rate=0.0, questions=(1, 1, 0, 0, 0), title=50.0, per_picture=2, kinds="classic,antiknight,disjoint",
              sizes=(9,))
    maker = SampleMaker(tiny_qwen2_vl_dir, seed=6, mix=mix, photos_dir=None)
    titled = untitled = 0
    for i in range(0, 16, 2):
        picture = maker._cached_picture(i // 2, 0)
        asked = [maker(i).question, maker(i + 1).question]
        if picture.title:
            titled += 1
            assert "title" in asked
            s = maker(i + asked.index("title"))
            assert TITLE_QUESTION in maker.tok.decode(s.input_ids)
            assert maker.tok.decode([t for t in s.labels if t >= 0][:-1]) == picture.title
        else:
            untitled += 1
            assert "title" not in asked
    assert titled and untitled
    plain = SampleMaker(tiny_qwen2_vl_dir, seed=6, mix=Mix(photo_rate=0.0, questions=(1, 1, 0, 0, 0), per_picture=2,
                                                           kinds="antiknight", sizes=(9,)), photos_dir=None)
    assert all(plain(i).question != "title" for i in range(6))


def test_small_pictures_draw_the_same_puzzles_as_smaller_photos(tiny_qwen2_vl_dir) -> None:
    """Mix.small_pictures = 1: the puzzle the plain recipe draws, its photo-style picture at a long side of 240-480
    px with the grid's cells small."""
    import math
    import random

    from vlm_sudoku.tools.render.scene import SMALL_LONG_SIDE

    small = SampleMaker(tiny_qwen2_vl_dir, seed=2, mix=Mix(photo_rate=0.0, kinds="classic", small_pictures=1.0),
                        photos_dir=None)
    plain = SampleMaker(tiny_qwen2_vl_dir, seed=2, mix=Mix(photo_rate=0.0, kinds="classic"), photos_dir=None)
    shrunk = 0
    for attempt in range(8):
        drawn, puzzle = small._drawn_puzzle(random.Random(attempt), easy=False)
        whole, same = plain._drawn_puzzle(random.Random(attempt), easy=False)
        assert puzzle == same
        if drawn.details["layout"] in ("photo", "scan"):
            shrunk += 1
            assert SMALL_LONG_SIDE[0] <= max(drawn.image.size) <= SMALL_LONG_SIDE[1]
            cell = min(math.dist(drawn.corners[i], drawn.corners[(i + 1) % 4]) for i in range(4)) / puzzle.size
            assert cell < 45
    assert shrunk
