"""Training samples, made on the fly from a seed: a rendered puzzle or an augmented photo,
a question, and its answer as the target.

Each sample is a pure function of (run seed, sample index), so a resumed run
sees exactly the samples it would have seen, whatever the number of workers.
The prompt and answer token ids come from the runtime's own code (prompts,
preprocessing, tokenizer, answer formats), so training and inference cannot drift.

Besides the product's two questions (rules, digits) the model is also taught
two reading drills that only training uses: "what is in r3c5?" (several turns
of one conversation about the same image) and "read row 3". They give the
model a direct signal for finding one cell in the picture, which the
81-symbol digits answer only gives through a long chain of tokens; a first run
without them (190k samples) never got past writing empty rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ...runtime.answers import digits_text
from ...runtime.clue_crops import QUESTION as CLUE, Clue, clue_answer_text, clues_of, load_clue_crops
from ...runtime.grid_view import (UNIT_SQUARE, Point, apply_perspective, load_grid_view, perspective_coefficients,
                                  prompt_images)
from ...runtime.image_io import load_image
from ...runtime.marks_map import layers_of
from ...runtime.preprocess import ImageSettings, num_image_tokens, preprocess
from ...runtime.prompts import QUESTIONS, crop_prompt_ids, prompt_ids, question_text
from ...runtime.rules_check import WORDS_ONLY
from ...runtime.text_crops import QUESTION as TEXT, TextCrops, TextLine, load_text_crops, text_answer_text
from ...runtime.tokenizer import Tokenizer
from ...solver.constraints.lines import Between, Palindrome, Renban, Thermo, Whisper
from ...solver.constraints.sums import Arrow, Killer
from ...solver.puzzle import Puzzle
from ..render import STYLE_WEIGHTS, render
from ..render import text as T
from ..render.labels import map_answer, rules_answer
from ..render.puzzles import VARIANT_KINDS, fewer_clues, parse_kinds, sample_puzzle
from .photos import DEFAULT_DIR, Photo, augment, load_photos, retake, split
from .shuffle import shuffled_photo

IGNORE = -100
# What the vision read-out (loop.AuxHead) is taught about the cell under each merged image token: its
# symbol, row, column and region (classes), then one bit per marking drawn in or on the cell. The
# markings are the variant rules whose constraints name cells (a kropki dot or an XV sign marks both cells
# of its pair); the diagonals are their lines. Rules drawn outside the grid (little killer, sandwich clues)
# and rules with no drawing (antiknight, negative constraints) have no bit: the language model reads them
# from the border or the text.
MARKINGS = ("killer", "thermo", "arrow", "whisper", "renban", "kropki", "xv", "odd_even", "diagonal")
_MARKING_OF = {"diagonal+": "diagonal", "diagonal-": "diagonal", "odd": "odd_even", "even": "odd_even"}
LABEL_CLASSES = (17, 16, 16, 16)  # symbol value 0 (blank) to 16; row; column; region
# A last column for clue crops only (runtime/clue_crops.py): the digit of a clue number under the token (1 + the
# digit), 0 where no digit is. Why: the clue drill alone did not teach the vision tower to say which digits a crop
# shows (run 19 answered 10 or 0 whatever it showed), as the answers alone did not teach it a cell's (runs 1-3).
GLYPH_CLASSES = 11
# Which neighbours each cell is joined to, as the marks maps write it: the same killer cage on its right and below
# (the K/H/V/X codes), and a line of any kind going on to its right, down-left, below or down-right neighbour (a
# line's steps, its direction left out). Why: the marking bits say a cell is in a cage or on a line, which is every
# cell of a full killer grid, and run 21 drew none of the by-kind killer maps right (0 of 6), the cages' shapes
# being wrong and not only their sums; the read-out is what taught the vision tower digits and clue numbers.
JOINS = ("cage_right", "cage_down", "line_right", "line_down_left", "line_down", "line_down_right")
_JOIN_STEPS = {(0, 1): 2, (1, -1): 3, (1, 0): 4, (1, 1): 5}  # a forward step -> its JOINS index
# The rules the words under a context view's token name (render.text.TEXT_GROUPS), where a render drew rule text. Why:
# run 21 names the rules given in words only (anti-king, anti-knight, disjoint groups...) from priors: it reads "Anti-King"
# as its answer to nearly every title drill, and disjoint groups as non-consecutive; the answers alone did not teach
# the vision tower to read, as they did not teach it digits (runs 1-3) or clue numbers (run 19).
TEXT_GROUPS = T.TEXT_GROUPS
# Label columns: LABEL_CLASSES, the MARKINGS bits, the JOINS bits, the TEXT_GROUPS bits, and the clue crops' glyph last.
MARK_COLUMNS = slice(len(LABEL_CLASSES), len(LABEL_CLASSES) + len(MARKINGS))
JOIN_COLUMNS = slice(MARK_COLUMNS.stop, MARK_COLUMNS.stop + len(JOINS))
TEXT_COLUMNS = slice(JOIN_COLUMNS.stop, JOIN_COLUMNS.stop + len(TEXT_GROUPS))
GLYPH_COLUMN = TEXT_COLUMNS.stop
LABEL_COLUMNS = GLYPH_COLUMN + 1
MAX_ANSWER_TOKENS = 600  # longer rules answers than this are not drawn (the runtime caps at 512 by default)

CELL_QUESTION = "What is in {ref}? Answer with the digit, or '.' if the cell is empty."
ROW_QUESTION = "Read row {row} of this Sudoku: one character per cell, '.' for an empty cell."
DRILL_QUESTIONS = (CELL_QUESTION, ROW_QUESTION)  # for the tokenizer corpus


QUESTION_KINDS = ("digits", "rules", "cells", "row", "marks")
# A drill of the words beside the grid (Mix.title): the title of a rules text the picture must show, the one
# place where rules that leave no mark (anti-knight, disjoint groups...) are named. Why: run 17 reads disjoint
# groups as anti-knight or nonconsecutive and anti-knight as anti-king; the rules answer names them in one token,
# which teaches little about reading the words that tell them apart.
TITLE_QUESTION = "What is the title of the rules text beside this Sudoku? Answer with its words."
# The clue crop (runtime/clue_crops.py, Mix.clue): one printed clue number (a cage sum, a sandwich or little-killer
# total) cut out of the picture where the marks map puts it, and asked as a question of its own.
DRILL_KINDS = (*QUESTION_KINDS, "title", CLUE)


@dataclass(frozen=True)
class Mix:
    """The data recipe (recorded in the model card)."""

    photo_rate: float = 0.05  # share of samples that are augmented training photos
    # What is asked, for rendered images and for photos (weights of digits, rules, cells, row, marks map). A
    # marks-map draw on a puzzle with no marking is drawn again among the others.
    questions: tuple[float, ...] = (0.40, 0.25, 0.25, 0.10, 0.0)
    photo_questions: tuple[float, ...] = (0.45, 0.05, 0.40, 0.10, 0.0)
    cell_turns: int = 6  # single-cell questions per conversation
    dense_rate: float = 0.3  # share of puzzles drawn with 50-95% of the cells filled
    easy_samples: int = 0  # the first samples are clean app screenshots of classic 4/6/9 grids
    kinds: str = "all"  # render.puzzles.parse_kinds spec
    sizes: tuple[int, ...] = (4, 6, 9, 16)
    corner_jitter: float = 0.012  # grid-view models: std of the corner error, as a share of the grid's side
    photo_shuffle: float = 0.0  # share of training photos whose grid's bands and stacks are reordered (shuffle.py)
    few_clues: float = 0.0  # share of variant puzzles cut to 1-2 clues of each marking (render.puzzles.fewer_clues)
    # Consecutive samples asked about one picture, each its own question (drawn by weight without repeats while
    # there are kinds left). Why: drawing and preprocessing the picture, not the GPU, sets a run's pace, and a
    # picture has several things to ask (its digits, rules, a layer's map). 1 keeps the samples of runs before it.
    per_picture: int = 1
    title: float = 0.0  # weight of the title drill among rendered pictures' questions (0: samples as before it)
    clue: float = 0.0  # weight of the clue crop among rendered pictures' questions (0: samples as before it)
    # Share of pictures drawn for the clue drill alone: a puzzle of the kinds with printed clue numbers (CLUE_KINDS),
    # each of its per_picture samples a crop of one of them. Why: those kinds are about one picture in eight, and a
    # picture's questions are drawn without repeats, so the clue weight alone gives crops ~3% of samples; crops
    # are cheap once the picture is drawn. 0 draws as runs before it (no extra random draw).
    clue_pictures: float = 0.0
    # Share of rendered newspaper and book pictures drawn as small photos (render(small=True): a long side of
    # 240-480 px). Why: the styles' own sizes put about one classic grid in six under 30 px a cell, and those are
    # most of what is still misread (eval_reader's grid_exact_by_cell_px). 0 draws as runs before it (no draw).
    small_pictures: float = 0.0
    # Share of pictures drawn for the text drill alone (runtime/text_crops.py): a rendered puzzle, rules given in
    # words only drawn more often (TEXT_KINDS), each of its per_picture samples a crop of one line of words found
    # around the grid, answered with the words-only rules the line's own words state. 0 draws as runs before it.
    text_pictures: float = 0.0

    def __post_init__(self) -> None:
        for name in ("questions", "photo_questions"):
            if len(getattr(self, name)) != len(QUESTION_KINDS):
                raise ValueError(f"Mix.{name} needs a weight for each of {', '.join(QUESTION_KINDS)}")


#: The generator's kinds whose markings print clue numbers (cage sums, sandwich and little-killer totals).
CLUE_KINDS = "killer,sandwich,little_killer"
#: The text drill's kinds: every variant kind (a classic puzzle prints no rule a line could state), the rules given
#: in words only (WORDS_ONLY) five times as often.
TEXT_KINDS = ",".join([*VARIANT_KINDS, *(f"{kind}*5" for kind in WORDS_ONLY)])
#: Of a text drill picture's crops, the share asked of a line that states a rule, where it has one (the rest are
#: any of the lines the runtime asks, most of which state none).
STATED_SHARE = 0.5

LINES = (Thermo, Whisper, Renban, Palindrome, Between)  # the line rules with a .line (Arrow has a bulb and a shaft)
#: The marks-map layers the rendered puzzles train (runtime/marks_map.py; the generator draws no palindrome or
#: between lines), which a model trained with marks-map questions declares.
TRAINED_LAYERS = ("regions", "killer", "thermo", "arrow", "whisper", "renban", "kropki", "xv", "odd_even",
                  "outside")


@dataclass
class Sample:
    pixel_values: np.ndarray  # (patches, 1176) float32, every image's patches in prompt order
    grid_thw: np.ndarray  # (images, 3) int64: the context view for models with one, then the grid view
    input_ids: list[int]
    labels: list[int]
    source: str  # "render" or "photo"
    question: str
    # Grid-view models: per merged image token, (symbol value, grid row, grid column) of the cell under
    # its centre, IGNORE outside the grid. Training-only targets for the vision tower (see loop.AuxHead).
    token_labels: np.ndarray | None = None


class SampleMaker:
    def __init__(self, model_dir: str | Path, seed: int, mix: Mix = Mix(), photos_dir: Path | None = DEFAULT_DIR) -> None:
        self.tok = Tokenizer.from_folder(model_dir)
        self.image_settings = ImageSettings.from_json(Path(model_dir))
        self.view = load_grid_view(model_dir)
        self.crops = load_clue_crops(model_dir)
        self.lines = load_text_crops(model_dir)
        self.seed = seed
        self.mix = mix
        self._cache: tuple[tuple[int, int], _Picture] | None = None
        self.photos: list[Photo] = []
        if photos_dir is not None and Path(photos_dir).is_dir() and mix.photo_rate > 0:
            self.photos, _validation = split(load_photos(Path(photos_dir)))
            if self.view is not None:  # the view needs the grid's corners (outlines.csv lacks a few)
                self.photos = [p for p in self.photos if len(p.corners) == 4]

    def __call__(self, index: int) -> Sample:
        k = self.mix.per_picture
        for attempt in range(8):
            rng = random.Random(self.seed * 1_000_003 + index * 7919 + attempt)
            if k == 1:  # the picture and the question from one generator, as runs before per_picture drew them
                picture = self._picture(rng, easy=index < self.mix.easy_samples)
                sample = self._ask(picture, rng, picture.questions[0])
            else:
                picture = self._cached_picture(index // k, attempt)
                sample = self._ask(picture, random.Random(rng.random()), picture.questions[index % k])
            if sample is not None:
                return sample
        raise RuntimeError(f"could not draw sample {index}")

    def _cached_picture(self, key: int, attempt: int) -> "_Picture":
        """Picture ``key`` (of samples key*k .. key*k+k-1), drawn once per worker: a batch's consecutive indices
        go to one worker, so the k samples of a picture mostly meet the cache."""
        if self._cache is None or self._cache[0] != (key, attempt):
            rng = random.Random(self.seed * 1_000_003 + key * 7919 + attempt + 0x9E3779B9)
            self._cache = ((key, attempt), self._picture(rng, easy=key * self.mix.per_picture < self.mix.easy_samples))
        return self._cache[1]

    def _puzzle_image(self, rng: random.Random, easy: bool):
        drawn, puzzle = self._drawn_puzzle(rng, easy)
        title = drawn.details.get("rules_title")
        glyphs = drawn.details.get("clue_glyphs") or []
        lines = drawn.details.get("rule_lines")
        if self.view is None:
            return [drawn.image], puzzle, None, title, (drawn.image, drawn.corners, drawn.corners, glyphs), lines
        image, labels, moved = self._view(drawn.image, drawn.corners, rng, puzzle)
        return (self._with_context(image, drawn.image), puzzle, labels, title, (drawn.image, moved, drawn.corners, glyphs),
                lines)

    def _drawn_puzzle(self, rng: random.Random, easy: bool, kinds: str | None = None, small: bool = True):
        """A puzzle of the mix (or of ``kinds``) and its rendered picture; ``small``: a share of them drawn as small
        photos (Mix.small_pictures), else none."""
        mix = self.mix
        sizes = (4, 6, 9) if easy else mix.sizes
        puzzle, solution = sample_puzzle(rng, sizes=sizes, kinds=parse_kinds("classic" if easy else kinds or mix.kinds))
        if mix.few_clues and puzzle.constraints and rng.random() < mix.few_clues:  # (no draw when off: old seeds)
            puzzle = fewer_clues(puzzle, rng)
        if rng.random() < mix.dense_rate:
            n = puzzle.size
            keep = rng.uniform(0.5, 0.95)
            puzzle = puzzle.with_givens([[solution[r][c] if rng.random() < keep else 0 for c in range(n)]
                                         for r in range(n)])
        style = "app" if easy else rng.choices(list(STYLE_WEIGHTS), list(STYLE_WEIGHTS.values()))[0]
        small = small and bool(mix.small_pictures) and style != "app" and rng.random() < mix.small_pictures
        return render(puzzle, rng, style=style, small=small), puzzle

    def _with_context(self, view, picture) -> list:
        """The images of a prompt: the whole picture for models trained with a context view, then the grid view."""
        return prompt_images(view, self.view.context_of(picture) if self.view is not None else None)

    def _view(self, image, corners, rng: random.Random, puzzle: Puzzle):
        """The grid view through corners a little off, as the runtime's grid locator finds them, the cell under
        each merged token of that view (where the true corners put it), and the corners it was warped from."""
        assert self.view is not None
        moved = self._jittered(corners, rng)
        return (self.view.warp(image, moved), cell_labels(self.view, moved, corners, puzzle, self.image_settings.factor),
                moved)

    def _jittered(self, corners, rng: random.Random) -> list[Point]:
        """The grid's corners a little off, as the runtime's grid locator finds them (Mix.corner_jitter)."""
        side = max(abs(corners[1][0] - corners[0][0]), abs(corners[3][1] - corners[0][1]), 1.0)
        spread = self.mix.corner_jitter * side
        return [(x + max(-3 * spread, min(3 * spread, rng.gauss(0, spread))),
                 y + max(-3 * spread, min(3 * spread, rng.gauss(0, spread)))) for x, y in corners]

    def _picture(self, rng: random.Random, easy: bool = False) -> "_Picture":
        """A rendered puzzle or a retaken training photo, preprocessed, with what can be asked about it."""
        mix = self.mix
        if mix.clue_pictures and self.crops is not None and not easy and rng.random() < mix.clue_pictures:
            drill = self._clue_picture(rng)
            if drill is not None:
                return drill
        if mix.text_pictures and self.lines is not None and not easy and rng.random() < mix.text_pictures:
            text = self._text_picture(rng)
            if text is not None:
                return text
        if self.photos and not easy and rng.random() < mix.photo_rate:
            photo = rng.choice(self.photos)
            puzzle, source, token_labels = photo.puzzle, "photo", None
            if self.view is None:
                images = [augment(photo, rng)]
            else:
                picture = retake(load_image(photo.path), rng)
                if puzzle.box is not None and rng.random() < mix.photo_shuffle:
                    picture, givens = shuffled_photo(picture, photo.corners, puzzle.givens, puzzle.box, rng)
                    puzzle = puzzle.with_givens(givens)
                image, token_labels, _ = self._view(picture, photo.corners, rng, puzzle)
                images = self._with_context(image, picture)
            weights, title, located, lines = (*mix.photo_questions, 0.0, 0.0), None, None, None
        else:
            images, puzzle, token_labels, title, located, lines = self._puzzle_image(rng, easy)
            source = "render"
            weights = (*mix.questions, mix.title, mix.clue)
        mapped = _mapped_layers(puzzle)
        clues = _clues(puzzle, mapped) if located is not None and self.crops is not None and mix.clue else []
        possible = {"marks"} if mapped else set()
        if title:
            possible.add("title")
        if clues:
            possible.add(CLUE)
        questions = _questions(rng, weights, self.mix.per_picture, possible)
        processed = [preprocess(im, self.image_settings) for im in images]
        if lines is not None and token_labels is not None and located is not None and len(processed) == 2:
            context = text_labels(located[0].size, processed[0][1][0], located[2], lines,
                                  self.image_settings.patch_size, self.image_settings.merge_size)
            token_labels = np.concatenate([context, token_labels])  # (the context view is the first image)
        return _Picture(np.concatenate([p for p, _ in processed]), np.concatenate([g for _, g in processed]),
                        [num_image_tokens(g, self.image_settings.merge_size) for _, g in processed], puzzle,
                        token_labels, source, questions, title, located, clues)

    def _clue_picture(self, rng: random.Random) -> "_Picture | None":
        """A rendered puzzle of CLUE_KINDS whose every sample is a clue crop; None when it printed no number.
        No grid view is warped or labelled for it: a crop is cut from the drawn picture, through corners jittered
        as a view's are."""
        drawn, puzzle = self._drawn_puzzle(rng, False, CLUE_KINDS)
        corners = drawn.corners if self.view is None else self._jittered(drawn.corners, rng)  # (drawn either way)
        clues = _clues(puzzle, _mapped_layers(puzzle))
        if not clues:
            return None
        located = (drawn.image, corners, drawn.corners, drawn.details.get("clue_glyphs") or [])
        return _Picture(np.zeros((0, 0), np.float32), np.zeros((0, 3), np.int64), [], puzzle, None, "render",
                        [CLUE] * self.mix.per_picture, None, located, clues)

    def _text_picture(self, rng: random.Random) -> "_Picture | None":
        """A rendered puzzle of TEXT_KINDS whose every sample is a text crop; None when no line of words is found
        around its grid. The lines are found as the runtime finds them, through corners jittered as a view's are."""
        assert self.lines is not None
        # (never a small photo: its rule text would be a few pixels high, a line to guess, not to read)
        drawn, puzzle = self._drawn_puzzle(rng, False, TEXT_KINDS, small=False)
        corners = self._jittered(drawn.corners, rng)
        found = self.lines.find(drawn.image, corners)
        if not found:
            return None
        texts = drawn.details.get("texts") or []
        return _Picture(np.zeros((0, 0), np.float32), np.zeros((0, 3), np.int64), [], puzzle, None, "render",
                        [TEXT] * self.mix.per_picture, None, (drawn.image, corners, drawn.corners, []), [],
                        [(line, line_rules(line.box, texts)) for line in found], texts)

    def _text(self, picture: "_Picture", rng: random.Random) -> Sample:
        """A text crop of one of ``picture``'s lines (one that states a rule STATED_SHARE of the time, where there is
        one) and the rules its words state as the answer."""
        assert self.lines is not None and picture.located is not None
        stating = [pair for pair in picture.lines if pair[1]]
        line, rules = rng.choice(stating if stating and rng.random() < STATED_SHARE else picture.lines)
        image, corners, true_corners = picture.located[0], picture.located[1], picture.located[2]
        crop = self.lines.crop(image, corners, line)
        pixels, grid = preprocess(crop, self.image_settings)
        count = num_image_tokens(grid, self.image_settings.merge_size)
        ids = crop_prompt_ids(self.tok, TEXT, count)
        answer = self.tok.encode(text_answer_text(rules)) + [self.tok.specials.im_end]
        labels = None
        factor = self.image_settings.factor
        if count * factor ** 2 == crop.width * crop.height:  # (the crop's size was kept)
            labels = line_token_labels(self.lines, corners, true_corners, line, picture.words, factor)
        return Sample(pixels, grid, ids + answer, [IGNORE] * len(ids) + answer, picture.source, TEXT, labels)

    def _ask(self, picture: "_Picture", rng: random.Random, question: str) -> Sample | None:
        """A sample of ``question`` about ``picture``; None when the answer is too long to train on."""
        puzzle, counts, token_labels = picture.puzzle, picture.counts, picture.token_labels
        if question == CLUE:
            return self._clue(picture, rng)
        if question == TEXT:
            return self._text(picture, rng)
        turns = self._turns(question, puzzle, rng, picture.title)
        ids = prompt_ids(self.tok, turns[0][0], counts)
        labels = [IGNORE] * len(ids)
        for i, (q, answer) in enumerate(turns):
            if i:  # a follow-up turn in the same conversation
                follow = self._followup(q)
                ids += follow
                labels += [IGNORE] * len(follow)
            answer_ids = self.tok.encode(answer) + [self.tok.specials.im_end]
            if len(answer_ids) > MAX_ANSWER_TOKENS:
                return None
            ids += answer_ids
            labels += answer_ids
        if token_labels is not None and len(counts) > 1 and len(token_labels) == counts[-1]:
            # a context view without text labels (a photo's): its tokens have no cell under them
            token_labels = np.concatenate([np.full((sum(counts[:-1]), LABEL_COLUMNS), IGNORE, dtype=token_labels.dtype),
                                           token_labels])
        if token_labels is not None and len(token_labels) != sum(counts):
            token_labels = None  # a view was not the size the processor kept (never for a 448 view)
        return Sample(picture.pixel_values, picture.grid_thw, ids, labels, picture.source, question, token_labels)

    def _clue(self, picture: "_Picture", rng: random.Random) -> Sample:
        """A clue crop of ``picture`` (one of its printed numbers, cut where the runtime cuts it: from the picture
        through the grid's corners as located, a little off) and the number as the answer."""
        assert self.crops is not None and picture.located is not None
        clue = rng.choice(picture.clues)
        image, corners, true_corners, glyphs = picture.located
        n = picture.puzzle.size
        pixels, grid = preprocess(self.crops.crop(image, corners, n, clue), self.image_settings)
        count = num_image_tokens(grid, self.image_settings.merge_size)
        ids = crop_prompt_ids(self.tok, CLUE, count)
        answer = self.tok.encode(clue_answer_text(clue.number)) + [self.tok.specials.im_end]
        labels = None
        boxes = [(ch, box) for cell, ch, box in glyphs if tuple(cell) == clue.cell]
        if boxes and count * self.image_settings.factor ** 2 == self.crops.size ** 2:  # (the crop's size was kept)
            labels = glyph_labels(self.crops, corners, true_corners, n, clue, boxes, self.image_settings.factor)
        return Sample(pixels, grid, ids + answer, [IGNORE] * len(ids) + answer, picture.source, CLUE, labels)

    def _turns(self, question: str, puzzle: Puzzle, rng: random.Random, title: str | None = None) -> list[tuple[str, str]]:
        """(question text, answer text) pairs; several only for the single-cell drill."""
        n, sym = puzzle.size, puzzle.alphabet.symbol
        if question == "title":
            return [(TITLE_QUESTION, str(title))]
        if question == "digits":
            return [(QUESTIONS["digits"], digits_text(puzzle))]
        if question == "rules":
            return [(QUESTIONS["rules"], rules_answer(puzzle))]
        if question == "marks":
            layer = rng.choice(_mapped_layers(puzzle))  # (every one has a map)
            return [(question_text(f"map:{layer}"), str(map_answer(puzzle, layer)))]
        if question == "row":
            r = rng.randrange(n)
            return [(ROW_QUESTION.format(row=r + 1), "".join(sym(v) for v in puzzle.givens[r]))]
        filled = [(r, c) for r in range(n) for c in range(n) if puzzle.givens[r][c]]
        empty = [(r, c) for r in range(n) for c in range(n) if not puzzle.givens[r][c]]
        cells = []
        for _ in range(self.mix.cell_turns):  # about two thirds filled cells: the digits are what is hard
            pool = filled if filled and (not empty or rng.random() < 0.67) else empty
            cells.append(rng.choice(pool))
        return [(CELL_QUESTION.format(ref=f"r{r + 1}c{c + 1}"), sym(puzzle.givens[r][c])) for r, c in cells]

    def _followup(self, question: str) -> list[int]:
        sp, enc = self.tok.specials, self.tok.encode
        return [*enc("\n"), sp.im_start, *enc("user\n" + question), sp.im_end, *enc("\n"), sp.im_start,
                *enc("assistant\n")]


@dataclass(frozen=True)
class _Picture:
    """What one drawn picture gives every question asked about it."""

    pixel_values: np.ndarray
    grid_thw: np.ndarray
    counts: list[int]  # image tokens per prompt image
    puzzle: Puzzle
    token_labels: np.ndarray | None
    source: str
    questions: list[str]  # what its consecutive samples ask, in turn
    title: str | None = None  # the title of the rules text it must show (renders only)
    # renders only: (the drawn picture, the grid corners its views were warped from, the true ones, the clue
    # numbers' glyphs as draw_puzzle recorded them)
    located: tuple | None = None
    clues: list[Clue] = field(default_factory=list)  # its printed clue numbers (clue crops; renders only)
    # the lines of words the runtime would ask about, each with the words-only rules it states, and every word drawn
    # with its box in the grid's unit square (text drill only)
    lines: list[tuple[TextLine, tuple[str, ...]]] = field(default_factory=list)
    words: list[tuple[str, Sequence[float]]] = field(default_factory=list)


def _questions(rng: random.Random, weights: Sequence[float], count: int, possible: set[str]) -> list[str]:
    """``count`` question kinds of DRILL_KINDS drawn by weight, each kind once while there are kinds left; the
    marks map and the title drill only where ``possible`` names them (a puzzle with a mapped layer, a picture
    with a rules title; a draw of one otherwise is drawn again among the first four). One question is drawn
    exactly as runs before per_picture drew theirs, and a title weight of 0 draws as runs before it."""
    kinds = list(DRILL_KINDS)
    always = kinds[:4]
    first = rng.choices(kinds, weights)[0]
    if first not in always and first not in possible:
        first = rng.choices(always, weights[:4])[0]
    out = [first]
    usable = {k: w for k, w in zip(kinds, weights) if w > 0 and (k in always or k in possible)}
    left = {k: w for k, w in usable.items() if k != first}
    while len(out) < count:
        if not left:  # every kind asked: start again
            left = dict(usable)
        pick = rng.choices(list(left), list(left.values()))[0]
        out.append(pick)
        del left[pick]
    return out


def _clues(puzzle: Puzzle, mapped: Sequence[str]) -> list[Clue]:
    """The printed clue numbers of ``puzzle``, where its marks maps put them (runtime/clue_crops.py); ``mapped``:
    its layers that have a map (_mapped_layers)."""
    return [clue for layer in ("killer", "outside") if layer in mapped
            for clue in clues_of(map_answer(puzzle, layer), layer)]


def _mapped_layers(puzzle: Puzzle) -> list[str]:
    """The trained layers this puzzle has a map of."""
    return [layer for layer in layers_of(puzzle, TRAINED_LAYERS) if map_answer(puzzle, layer) is not None]


def cell_labels(view, moved: Sequence[Point], corners: Sequence[Point], puzzle: Puzzle, token_px: int) -> np.ndarray:
    """(value, row, column, region, marking bits...) of the cell under the centre of each merged token of a
    grid view (LABEL_COLUMNS columns; IGNORE for tokens outside the grid).

    ``moved`` are the corners the view was warped from, ``corners`` the grid's true corners: the
    token centre goes back into the picture, then into the grid's unit square.
    """
    n = puzzle.size
    tokens = view.size // token_px
    centres = (np.arange(tokens) + 0.5) * token_px
    x, y = np.meshgrid(centres, centres)  # raster order of the merged tokens
    u, v = apply_perspective(perspective_coefficients(view.target, moved), x.ravel(), y.ravel())
    gx, gy = apply_perspective(perspective_coefficients(corners, UNIT_SQUARE), u, v)
    inside = (gx >= 0) & (gx < 1) & (gy >= 0) & (gy < 1)
    col = np.clip((gx * n).astype(np.int64), 0, n - 1)
    row = np.clip((gy * n).astype(np.int64), 0, n - 1)
    givens = np.asarray(puzzle.givens, dtype=np.int64)
    regions = np.asarray(puzzle.regions, dtype=np.int64)
    marks = marking_bits(puzzle)
    joins = join_bits(puzzle)
    out = np.concatenate([np.stack([givens[row, col], row, col, regions[row, col] - regions.min()], axis=1),
                          marks[row, col], joins[row, col], np.full((len(row), len(TEXT_GROUPS) + 1), IGNORE)], axis=1)
    out[~inside] = IGNORE
    return out


def _words_in(box: Sequence[float], words: Sequence[tuple[str, Sequence[float]]]) -> list[tuple[str, Sequence[float]]]:
    """The drawn words (a render's details["texts"], in the order drawn, boxes in the grid's unit square) whose middle
    is in a found line's ``box``."""
    x0, y0, x1, y1 = box
    return [(word, b) for word, b in words if x0 <= (b[0] + b[2]) / 2 <= x1 and y0 <= (b[1] + b[3]) / 2 <= y1]


def line_rules(box: Sequence[float], words: Sequence[tuple[str, Sequence[float]]]) -> tuple[str, ...]:
    """The words-only rules (render.text.stated) that the drawn words inside a found line's ``box`` state together."""
    return T.stated(" ".join(word for word, _ in _words_in(box, words)))


def line_token_labels(crops: TextCrops, corners: Sequence[Point], true_corners: Sequence[Point], line: TextLine,
                      words: Sequence[tuple[str, Sequence[float]]], token_px: int) -> np.ndarray:
    """Per merged token of a text crop (cut through ``corners``, the grid's true corners being ``true_corners``): a
    bit in the TEXT_COLUMNS of each words-only rule whose words (render.text.stating_words) cover a quarter of the
    token or of the word, 0 where none does; IGNORE in the other columns (the other rules' words are not labelled in a
    crop). Why: the answers alone did not teach the crops in a short run (probe run 28 answered "none" to every line),
    as they did not teach the clue crops' digits (run 19) before their tokens were labelled (glyph_labels)."""
    width, source = crops.source(corners, line)
    rows, cols = crops.height // token_px, width // token_px
    out = np.full((rows * cols, LABEL_COLUMNS), IGNORE, dtype=np.int64)
    columns = [TEXT_COLUMNS.start + TEXT_GROUPS.index(rule) for rule in WORDS_ONLY]
    out[:, columns] = 0
    inside = _words_in(line.box, words)
    unit_to_picture = perspective_coefficients(UNIT_SQUARE, true_corners)
    picture_to_crop = perspective_coefficients(source, crops.rectangle(width))
    for (_word, box), rules in zip(inside, T.stating_words([w for w, _ in inside])):
        if rules:
            _, covered = _token_cover(box, unit_to_picture, picture_to_crop, rows, cols, token_px)
            for rule in rules:
                out[covered, TEXT_COLUMNS.start + TEXT_GROUPS.index(rule)] = 1
    return out


def _token_cover(box: Sequence[float], unit_to_picture: Sequence[float], picture_to_crop: Sequence[float], rows: int,
                 cols: int, token_px: int) -> tuple[np.ndarray, np.ndarray]:
    """How much of each token of a crop (rows x cols tokens of token_px, raster order) a box of the grid's unit square
    covers, in crop pixels, and which tokens it covers enough to label: a quarter of the token or of the box."""
    x0, y0, x1, y1 = box
    px, py = apply_perspective(unit_to_picture, np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]))
    cx, cy = apply_perspective(picture_to_crop, px, py)
    xs, ys = np.arange(cols + 1) * token_px, np.arange(rows + 1) * token_px
    wide = np.clip(np.minimum(xs[1:], cx.max()) - np.maximum(xs[:-1], cx.min()), 0, None)
    high = np.clip(np.minimum(ys[1:], cy.max()) - np.maximum(ys[:-1], cy.min()), 0, None)
    overlap = np.outer(high, wide).ravel()
    area = max(1e-6, (cx.max() - cx.min()) * (cy.max() - cy.min()))
    return overlap, overlap >= 0.25 * min(token_px * token_px, area)


def glyph_labels(crops, corners: Sequence[Point], true_corners: Sequence[Point], n: int, clue: Clue,
                 glyphs: Sequence[tuple[str, Sequence[float]]], token_px: int) -> np.ndarray:
    """Per merged token of a clue crop (cut through ``corners``, the grid's true corners being ``true_corners``):
    1 + the digit of the clue's glyph covering most of the token (a quarter of the token or of the glyph at least),
    0 for none, in the last label column (GLYPH_COLUMN, GLYPH_CLASSES); IGNORE in the others."""
    tokens = crops.size // token_px
    out = np.full((tokens * tokens, LABEL_COLUMNS), IGNORE, dtype=np.int64)
    out[:, GLYPH_COLUMN] = 0
    unit_to_picture = perspective_coefficients(UNIT_SQUARE, true_corners)
    picture_to_crop = perspective_coefficients(crops.source(corners, n, clue), crops.square)
    best = np.zeros(tokens * tokens)
    for ch, box in glyphs:
        overlap, enough = _token_cover(box, unit_to_picture, picture_to_crop, tokens, tokens, token_px)
        take = enough & (overlap > best)
        out[take, GLYPH_COLUMN] = 1 + int(ch)
        best[take] = overlap[take]
    return out


def text_labels(picture_size: tuple[int, int], grid_thw: Sequence[int], corners: Sequence[Point],
                lines: Sequence[tuple[Sequence[str], Sequence[float]]], patch: int = 14, merge: int = 2) -> np.ndarray:
    """Per merged token of a context view (the whole picture as preprocessed to ``grid_thw`` patches): a TEXT_GROUPS
    bit for each rule group named by a line of text under it, in the TEXT_COLUMNS (IGNORE in the others).

    ``lines`` are the render's rule lines in the grid's unit square (render.scene Canvas.rule_lines_in_grid); they go
    through the perspective of the grid's true ``corners``, which is exact for a flat page or screen and close for a
    bent one. A token takes the groups of every line that one of 3 x 3 points spread over it falls in: a line of
    text is often under half a token high in the context view."""
    _, gh, gw = (int(v) for v in grid_thw)
    rows, cols = gh // merge, gw // merge
    token = patch * merge
    out = np.full((rows * cols, LABEL_COLUMNS), IGNORE, dtype=np.int64)
    out[:, TEXT_COLUMNS] = 0
    if not lines:
        return out
    offsets = (np.array([0.2, 0.5, 0.8]) * token)
    ys = (np.arange(rows)[:, None] * token + offsets[None, :]).ravel()
    xs = (np.arange(cols)[:, None] * token + offsets[None, :]).ravel()
    px, py = np.meshgrid(xs * picture_size[0] / (gw * patch), ys * picture_size[1] / (gh * patch))
    u, v = apply_perspective(perspective_coefficients(corners, UNIT_SQUARE), px.ravel(), py.ravel())
    u, v = u.reshape(rows, 3, cols, 3), v.reshape(rows, 3, cols, 3)
    for groups, (x0, y0, x1, y1) in lines:
        inside = ((u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)).any(axis=(1, 3)).ravel()
        for group in groups:
            out[inside, TEXT_COLUMNS.start + TEXT_GROUPS.index(group)] = 1
    return out


def marking_bits(puzzle: Puzzle) -> np.ndarray:
    """(n, n, len(MARKINGS)) 0/1: which markings each cell carries."""
    n = puzzle.size
    bits = np.zeros((n, n, len(MARKINGS)), dtype=np.int64)
    for con in puzzle.constraints:
        rule = _MARKING_OF.get(con.rule, con.rule)
        if rule not in MARKINGS:
            continue
        k = MARKINGS.index(rule)
        cells = [cell for group in con.groups(puzzle) for cell in group] if rule == "diagonal" else con.cells()
        for r, c in cells:
            bits[r, c, k] = 1
    return bits


def join_bits(puzzle: Puzzle) -> np.ndarray:
    """(n, n, len(JOINS)) 0/1: the neighbours each cell shares a killer cage or a line with (JOINS). A join is
    labelled at the cell that comes first in reading order, as a map row writes a cage's H and V there; a line's
    consecutive cells only (an arrow's bulb to its shaft's first cell, then along the shaft)."""
    n = puzzle.size
    bits = np.zeros((n, n, len(JOINS)), dtype=np.int64)
    for con in puzzle.constraints:
        if isinstance(con, Killer):
            cage = set(con.cage)
            for r, c in cage:
                bits[r, c, 0] = (r, c + 1) in cage
                bits[r, c, 1] = (r + 1, c) in cage
            continue
        if isinstance(con, Arrow):
            path = [con.bulb[-1], *con.shaft] if con.shaft else []
        elif isinstance(con, LINES):
            path = list(con.line)
        else:
            continue
        for a, b in zip(path, path[1:]):
            if b < a:
                a, b = b, a
            step = _JOIN_STEPS.get((b[0] - a[0], b[1] - a[1]))
            if step is not None:  # (a two-cell bulb's shaft may start beside its first cell: no join then)
                bits[a[0], a[1], step] = 1
    return bits


def collate(samples: list[Sample], pad_id: int) -> dict:
    """One batch in the layout Qwen2VLForConditionalGeneration.forward takes (right padding)."""
    import torch

    longest = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), longest), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(samples), longest), dtype=torch.long)
    for i, s in enumerate(samples):
        n = len(s.input_ids)
        ids[i, :n] = torch.tensor(s.input_ids)
        labels[i, :n] = torch.tensor(s.labels)
        mask[i, :n] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "pixel_values": torch.from_numpy(np.concatenate([s.pixel_values for s in samples])),
        "image_grid_thw": torch.from_numpy(np.concatenate([s.grid_thw for s in samples])),
        "photos": sum(s.source == "photo" for s in samples),
        "token_labels": torch.from_numpy(np.concatenate([
            s.token_labels if s.token_labels is not None else np.full((len(s.pixel_values) // 4, LABEL_COLUMNS), IGNORE)
            for s in samples]).astype(np.int64)),
    }
