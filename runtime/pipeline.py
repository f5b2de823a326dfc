"""Image -> the model's two answers -> puzzle -> solution, with the time of every stage.

The rules question and the digits question share the image encoding and the
prompt prefix's KV cache: the image is encoded once and the prefix (system
turn + image tokens, the bulk of the prompt) is prefilled once, then each
question continues from that cache.

The digits are read from ``views`` grid views at slightly different zooms
(grid_view.ZOOMS): each answer comes with the model's next choices per token,
and the digits taken are those the views believe jointly (runtime/digit_belief.py).
A reading that does not solve uniquely then goes through the reading check
(runtime/reading_check.py): the most likely change of a few doubtful digits
that gives exactly one solution is taken, and reported as such. One still with
no solution, or with several, goes through the rules check (runtime/rules_check.py):
a rule type the model named without which the digits have exactly one solution is
left out (no solution only), or a rule given in words only is taken for another such
rule that gives exactly one, and reported as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..solver.errors import ModelOutputError, VlmSudokuError
from ..solver.puzzle import Puzzle
from ..solver.rules_json import write_rules
from ..solver.solve import SOLVED, SolveResult, solve
from .answers import parse_rules_answer, read_answers
from .clue_crops import (QUESTION as CLUE, ClueCrops, clue_answer, clues_of, load_clue_crops,
                         with_numbers)
from .digit_belief import DigitBelief, belief_of, combine_beliefs
from .engine import EncodedImage, Engine, Generation
from .grid_view import ZOOMS, GridView, Viewed, load_grid_view
from .image_io import load_image
from .marks_map import code_rows, layers_of, load_layers, maps_in, stand_in_reading, valid_map, voted_map
from .prompts import SharedPrompt, crop_prompt_ids, question_text, shared_prompt
from .reading_check import ALTERNATIVES, Correction, ReadingCheck, check_belief
from .rules_check import RulesCheck, check_rules
from .text_crops import QUESTION as TEXT, TextCrops, TextLine, load_text_crops, stated_in, with_stated

QUESTION_ORDER = ("rules", "digits")
DEFAULT_VIEWS = len(ZOOMS)
CROP_ANSWER_TOKENS = 8  # a clue's number, or the few rule names a line of text states


@dataclass
class Reading:
    """The model's answers about one image."""

    encoded: list[EncodedImage]  # in prompt order (grid_view.prompt_images): any context view, then the image read
    answers: dict[str, Generation]
    prefix_tokens: int
    prefix_s: float  # the shared prefix's prefill (0 when not shared)
    viewed: Viewed | None = None  # the grid view the model read, for models trained on grid views
    # the digits answers of the further views (grid_view.ZOOMS[1:]), each on its own prefix, and their time
    more_digits: list[Generation] = field(default_factory=list)
    more_views_s: float = 0.0
    more_maps: list[dict[str, str]] = field(default_factory=list)  # the further views' marks maps, by layer
    # the clue crops' answers (models that declare them: runtime/clue_crops.py), by layer and map place, and their time
    clues: dict[str, dict[tuple[int, int], str]] = field(default_factory=dict)
    clues_s: float = 0.0
    # the text crops (models that declare them: runtime/text_crops.py): each line asked, nearest the grid first, and
    # its answer
    lines: list[tuple[TextLine, str]] = field(default_factory=list)
    lines_s: float = 0.0

    def texts(self) -> dict[str, str]:
        """The answers' texts by question, the clue crops' as "clue:<layer>:<row>,<place>" (of the map), the text
        crops' as "text:<line>"."""
        return {**{q: g.text for q, g in self.answers.items()},
                **{f"{CLUE}:{layer}:{r},{c}": text for layer, read in self.clues.items() for (r, c), text in read.items()},
                **{f"{TEXT}:{k}": text for k, (_line, text) in enumerate(self.lines)}}

    def stated(self) -> tuple[str, ...] | None:
        """The words-only rules the text crops' answers state together (text_crops.stated_in), or None."""
        return stated_in(self.texts())

    def voted_maps(self) -> dict[str, str]:
        """The marks maps by layer (runtime/marks_map.py; none for models that declare no map): each voted cell
        by cell from the views that drew it (marks_map.voted_map), the first view's where there is no other."""
        first = maps_in({q: g.text for q, g in self.answers.items()})
        return {layer: voted_map([text, *(more[layer] for more in self.more_maps if layer in more)], layer)
                for layer, text in first.items()}

    def maps(self) -> dict[str, str]:
        """The voted maps, each clue number the clue crops read written over the map's own (an answer that is
        not a number leaves the map's)."""
        maps = self.voted_maps()
        for layer, read in self.clues.items():
            numbers = {place: n for place, n in ((p, clue_answer(t)) for p, t in read.items()) if n is not None}
            if numbers and layer in maps:
                maps[layer] = with_numbers(maps[layer], layer, numbers)
        return maps

    @property
    def image(self) -> EncodedImage:
        """The image read: the grid view for grid-view models, else the picture."""
        return self.encoded[-1]

    @property
    def context(self) -> EncodedImage | None:
        """The whole picture beside the grid view (models trained with one)."""
        return self.encoded[0] if len(self.encoded) > 1 else None


@dataclass
class Outcome:
    """Everything vlm-solve reports for one image."""

    image: str
    reading: Reading | None = None
    puzzle: Puzzle | None = None
    result: SolveResult | None = None
    error: VlmSudokuError | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The reading check, when it ran (the reading as given did not solve uniquely and the backend gives the
    # model's alternatives); with corrections, ``puzzle`` and ``result`` above are the corrected reading's.
    check: ReadingCheck | None = None
    views: int = 1  # digits answers whose belief ``puzzle``'s givens are (runtime/digit_belief.py)
    map_problems: list[str] = field(default_factory=list)  # maps left unused, or standing in for a cut or invalid list
    # The rules check, where it left a rule type out (the reading had no solution, and had one without it);
    # ``puzzle`` and ``result`` above are then the puzzle without it and its solution.
    rules_check: RulesCheck | None = None

    @property
    def read_puzzle(self) -> Puzzle | None:
        """The reading before the reading check changed anything (the views' joint reading)."""
        return self.check.read_puzzle if self.check is not None else self.puzzle

    @property
    def corrections(self) -> tuple[Correction, ...]:
        return self.check.corrections if self.check is not None else ()

    @property
    def exit_code(self) -> int:
        from .report import EXIT_CODES

        if self.error is not None:
            return self.error.exit_code
        assert self.result is not None
        return EXIT_CODES[self.result.status]


class Pipeline:
    check_reading = True  # (class defaults too: subclasses with their own __init__, e.g. the torch baseline)
    views = 1

    def __init__(self, engine: Engine, max_new_tokens: int = 512, share_prefix: bool = True,
                 check_reading: bool = True, views: int = DEFAULT_VIEWS) -> None:
        """``check_reading``: settle a reading that does not solve uniquely with the model's next choices
        (runtime/reading_check.py); False reports the model's reading as is. ``views``: grid views the digits
        are read from (1 to len(grid_view.ZOOMS); 1 is fastest; models that read whole pictures have one)."""
        if not 1 <= views <= len(ZOOMS):
            raise ValueError(f"views must be 1 to {len(ZOOMS)}, got {views}")
        self.engine = engine
        self.image_settings = engine.image_settings
        self.max_new_tokens = max_new_tokens
        self.share_prefix = share_prefix
        self.check_reading = check_reading
        self.views = views
        self.load_s = engine.load_s
        self.provider_name, self.precision, self.notes = engine.provider_name, engine.precision, engine.choice.notes
        self.grid_view: GridView | None = load_grid_view(engine.folder)
        self.map_layers: tuple[str, ...] = load_layers(engine.folder)
        self.clue_crops: ClueCrops | None = load_clue_crops(engine.folder)
        self.text_crops: TextCrops | None = load_text_crops(engine.folder)

    def view(self, image: Image.Image) -> tuple[Image.Image, Viewed | None]:
        """What the model reads: the grid view for models trained on one, else the picture itself."""
        if self.grid_view is None:
            return image, None
        viewed = self.grid_view.of(image)
        return viewed.image, viewed

    @classmethod
    def load(cls, folder: str | Path, provider: str = "auto", precision: str | None = None, threads: int | None = None,
             max_new_tokens: int = 512, share_prefix: bool = True, decoder: str = "auto",
             cuda_graph: bool | None = None, check_reading: bool = True, views: int = DEFAULT_VIEWS) -> "Pipeline":
        return cls(Engine(folder, provider=provider, precision=precision, threads=threads, decoder=decoder,
                          cuda_graph=cuda_graph), max_new_tokens, share_prefix, check_reading, views)

    def read_image(self, image: Image.Image, questions: tuple[str, ...] = QUESTION_ORDER,
                   on_text: Callable[[str, str], None] | None = None) -> Reading:
        engine = self.engine
        picture = image
        image, viewed = self.view(image)
        encoded = [engine.encode_image(im) for im in (viewed.images if viewed is not None else [image])]
        answers, prefix_tokens, prefix_s = self._ask(encoded, questions, on_text)
        reading = Reading(encoded, answers, prefix_tokens, prefix_s, viewed)
        if "digits" in questions and self.views > 1 and viewed is not None and viewed.corners is not None:
            t = time.perf_counter()
            assert self.grid_view is not None
            maps = tuple(q for q in answers if q.startswith("map:"))  # asked again of each view, to be voted
            for zoom in ZOOMS[1:self.views]:
                view = engine.encode_image(self.grid_view.zoomed(picture, viewed.corners, zoom))
                more, _, _ = self._ask([*encoded[:-1], view], ("digits", *maps), None)  # the same context view, if any
                reading.more_digits.append(more["digits"])
                reading.more_maps.append(maps_in({q: g.text for q, g in more.items()}))
            reading.more_views_s = time.perf_counter() - t
        self.read_clues(picture, reading)
        self.read_lines(picture, reading)
        return reading

    def read_clues(self, picture: Image.Image, reading: Reading) -> None:
        """Ask the clue crop of every printed number of ``reading``'s voted killer and outside maps (models that
        declare the crops, a grid found, a map that reads): ``reading.clues``."""
        viewed = reading.viewed
        if self.clue_crops is None or viewed is None or viewed.corners is None:
            return
        t = time.perf_counter()
        for layer, text in reading.voted_maps().items():
            n = len(code_rows(text, layer)) - (2 if layer == "outside" else 0)
            if not valid_map(text, layer, n):
                continue  # (with_maps reports the map)
            for clue in clues_of(text, layer):
                crop = self.clue_crops.crop(picture, viewed.corners, n, clue)
                reading.clues.setdefault(layer, {})[(clue.row, clue.col)] = self.crop_text(crop, CLUE)
        reading.clues_s = time.perf_counter() - t

    def read_lines(self, picture: Image.Image, reading: Reading) -> None:
        """Ask the text crop of each line of words nearest the grid (models that declare the crops, a grid found):
        ``reading.lines``."""
        viewed = reading.viewed
        if self.text_crops is None or viewed is None or viewed.corners is None:
            return
        t = time.perf_counter()
        for line in self.text_crops.find(picture, viewed.corners):
            reading.lines.append((line, self.crop_text(self.text_crops.crop(picture, viewed.corners, line), TEXT)))
        reading.lines_s = time.perf_counter() - t

    def crop_text(self, crop: Image.Image, question: str) -> str:
        """The model's answer to a crop's question (CLUE, TEXT) about one crop: its own short prompt, the crop its
        only image."""
        engine = self.engine
        encoded = engine.encode_image(crop)
        ids = crop_prompt_ids(engine.tokenizer, question, encoded.num_tokens)
        return engine.generate(ids, images=[encoded], max_new_tokens=CROP_ANSWER_TOKENS).text

    def map_questions(self, answers: dict[str, Generation]) -> tuple[str, ...]:
        """The marks-map questions (runtime/marks_map.py) to ask after these answers: one per declared layer
        whose rules the rules answer names, those of the part that does not read included where maps can stand
        in for it (a list that breaks off, rules that are not valid: marks_map.rules_with_maps); none for models
        that declare no layer, or after a rules answer that is not a puzzle (settle reports that)."""
        if not self.map_layers or "rules" not in answers:
            return ()
        text = answers["rules"].text
        try:
            return tuple(f"map:{layer}" for layer in layers_of(parse_rules_answer(text), self.map_layers))
        except VlmSudokuError:
            stand_in = stand_in_reading(text, self.map_layers)
        if stand_in is None:
            return ()
        part, _ = stand_in
        return tuple(f"map:{layer}" for layer in layers_of(part.puzzle, self.map_layers, also=part.unread))

    def _ask(self, encoded: list[EncodedImage], questions: tuple[str, ...],
             on_text: Callable[[str, str], None] | None) -> tuple[dict[str, Generation], int, float]:
        """The answers to ``questions`` about ``encoded`` (one shared prefix for several unless share_prefix is
        off; one question is one prefill of its whole prompt), then to the marks-map questions they call for
        (on the same prefix), the prefix's length and its prefill time."""
        engine = self.engine
        maybe = [f"map:{layer}" for layer in self.map_layers] if "rules" in questions else []
        prompt = shared_prompt(engine.tokenizer, [e.num_tokens for e in encoded],
                               {q: question_text(q) for q in [*questions, *maybe]})
        answers: dict[str, Generation] = {}
        prefix_s = 0.0
        cache = None
        if self.share_prefix and len(questions) + len(maybe) > 1:
            t = time.perf_counter()
            longest = max(len(ids) for ids in prompt.suffix_ids.values())
            engine.reserve(len(prompt.prefix_ids) + longest, self.max_new_tokens)  # one size for prefix and answers
            _logits, cache = engine.prefill(prompt.prefix_ids, encoded)
            prefix_s = time.perf_counter() - t
        for q in questions:
            self._answer(q, prompt, encoded, cache, answers, on_text)
        for q in self.map_questions(answers):
            self._answer(q, prompt, encoded, cache, answers, on_text)
        return answers, len(prompt.prefix_ids), prefix_s

    def _answer(self, q: str, prompt: SharedPrompt, encoded: list[EncodedImage], cache: Any,
                answers: dict[str, Generation], on_text: Callable[[str, str], None] | None) -> None:
        """Question ``q``'s answer into ``answers``: on the prefix's KV cache when there is one."""
        engine = self.engine
        callback = (lambda text, q=q: on_text(q, text)) if on_text else None
        # the digits answer carries the model's next choices per token when the views' belief or the reading
        # check may need them
        wanted = q == "digits" and (self.check_reading or self.views > 1)
        alternatives = ALTERNATIVES if wanted else 0
        if cache is not None:
            answers[q] = engine.generate(prompt.suffix_ids[q], past=cache, max_new_tokens=self.max_new_tokens,
                                         on_text=callback, alternatives=alternatives)
        else:
            answers[q] = engine.generate(prompt.full(q), images=encoded, max_new_tokens=self.max_new_tokens,
                                         on_text=callback, alternatives=alternatives)

    def read(self, image: Image.Image, questions: tuple[str, ...] = QUESTION_ORDER) -> dict[str, str]:
        """The answers' texts (the interface tools/eval_reader.py scores)."""
        return self.read_image(image, questions).texts()

    def belief(self, reading: Reading, size: int) -> DigitBelief | None:
        """What the digits answers of ``reading`` jointly say each cell holds, in a ``size`` grid: None when they
        carry no choices (views off and the check off, or a backend that gives none). A view whose answer is
        unreadable is left out (settle has found one that reads)."""
        beliefs = []
        for gen in [reading.answers["digits"], *reading.more_digits]:
            if gen.choices is None:
                continue
            try:
                beliefs.append(belief_of(gen.text, gen.tokens, gen.choices, self.engine.tokenizer, size))
            except ModelOutputError:
                continue
        return combine_beliefs(beliefs) if beliefs else None

    def solve_path(self, path: str | Path, on_stage: Callable[[str, dict[str, Any]], None] | None = None) -> Outcome:
        """Read and solve one image file; errors are captured in the outcome, never raised."""
        out = Outcome(str(path))
        stage = on_stage or (lambda name, info: None)
        try:
            image = load_image(path)
            out.reading = reading = self.read_image(image)
            enc = reading.image
            if reading.viewed is not None:
                out.timings["grid_view"] = reading.viewed.seconds
                stage("grid", {"found": reading.viewed.corners is not None, "corners": reading.viewed.corners,
                               "grid_view": reading.viewed.seconds})
            preprocess_s = sum(e.preprocess_s for e in reading.encoded)
            vision_s = sum(e.vision_s for e in reading.encoded)
            out.timings.update(preprocess=preprocess_s, vision=vision_s, prefix_prefill=reading.prefix_s)
            info = {"size": enc.source_size, "resized": enc.resized, "image_tokens": enc.num_tokens,
                    "preprocess": preprocess_s, "vision": vision_s, "prefix_tokens": reading.prefix_tokens,
                    "prefix_prefill": reading.prefix_s}
            if reading.context is not None:
                info.update(context_resized=reading.context.resized, context_tokens=reading.context.num_tokens)
            stage("image", info)
            for q, gen in reading.answers.items():
                out.timings.update({f"{q}_prefill": gen.prefill_s, f"{q}_decode": gen.decode_s,
                                    f"{q}_tokens": float(len(gen.tokens)), f"{q}_tokens_per_s": gen.tokens_per_s})
                stage(q, {"tokens": len(gen.tokens), "prefill": gen.prefill_s, "decode": gen.decode_s,
                          "tokens_per_s": gen.tokens_per_s, "stopped": gen.stopped, "text": gen.text})
            if reading.more_digits:
                out.timings["more_views"] = reading.more_views_s
                stage("views", {"views": 1 + len(reading.more_digits), "more_views": reading.more_views_s,
                                "maps": sorted({layer for more in reading.more_maps for layer in more})})
            if reading.clues:
                out.timings["clues"] = reading.clues_s
                stage("clues", {"clues": sum(len(read) for read in reading.clues.values()), "seconds": reading.clues_s})
            if reading.lines:
                out.timings["lines"] = reading.lines_s
                stage("lines", {"lines": len(reading.lines), "seconds": reading.lines_s, "stated": reading.stated() or ()})
            self.settle(reading, out, stage)
        except VlmSudokuError as exc:
            out.error = exc
        return out

    def settle(self, reading: Reading, out: Outcome,
               on_stage: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        """The answers of ``reading`` -> puzzle -> solution, through the reading check when the reading does not
        solve uniquely: ``out``'s puzzle, result, check and timings. What solve_path and tools/eval_reader do
        with a reading; raises VlmSudokuError for answers that are not a puzzle."""
        stage = on_stage or (lambda name, info: None)
        t = time.perf_counter()
        digits = [gen.text for gen in [reading.answers["digits"], *reading.more_digits]]  # (the first that reads)
        out.puzzle = with_stated(read_answers(reading.answers["rules"].text, digits, reading.maps(), out.map_problems),
                                 reading.stated())
        # one answer's choices are weighed only if the check runs (a 152k vocabulary's log-softmax is ~1.5 ms a
        # token); several views' are combined first
        belief = self.belief(reading, out.puzzle.size) if reading.more_digits else None
        if belief is not None:
            out.views = belief.views
            out.puzzle = out.puzzle.with_givens(belief.grid)
        out.timings["parse"] = time.perf_counter() - t
        out.result = solve(out.puzzle)
        out.timings["solve"] = out.result.seconds
        stage("solve", {"status": out.result.status, "solve": out.result.seconds, "views": out.views})
        if out.result.status != SOLVED and self.check_reading:
            if belief is None:
                belief = self.belief(reading, out.puzzle.size)
            out.check = check_belief(out.puzzle, out.result, belief) if belief is not None else None
            if out.check is not None:
                out.timings["reading_check"] = out.check.seconds
                out.puzzle, out.result = out.check.puzzle, out.check.result
                stage("check", {"check": out.check})
        if out.result.status != SOLVED and self.check_reading:
            out.rules_check = check_rules(out.puzzle, out.result)
            if out.rules_check is not None:
                out.timings["rules_check"] = out.rules_check.seconds
                out.puzzle, out.result = out.rules_check.puzzle, out.rules_check.result
                stage("rules_check", {"rules_check": out.rules_check})


def outcome_json(out: Outcome) -> dict[str, Any]:
    """One object per image for ``vlm-solve --json`` (README documents the keys)."""
    from .report import result_json

    obj: dict[str, Any] = {"image": out.image}
    if out.reading is not None and out.reading.viewed is not None:
        obj["grid_found"] = out.reading.viewed.corners is not None
    if out.puzzle is not None:
        obj["grid"] = out.puzzle.format_grid()  # as corrected by the reading check, if it corrected anything
        if out.check is not None and out.check.corrected:
            obj["grid_as_read"] = out.check.read_puzzle.format_grid()
            obj["status_as_read"] = out.check.read_status
        obj["corrections"] = [c.as_json() for c in out.corrections]
        obj["views"] = out.views
        if out.map_problems:
            obj["map_problems"] = out.map_problems
        ruled = out.rules_check
        if ruled is not None:
            said = {"type": ruled.dropped, "why": ruled.line(), "status_as_read": ruled.read_result.status}
            if ruled.instead is None:
                obj["rule_left_out"] = said
            else:
                obj["rule_replaced"] = {**said, "by": ruled.instead}
        obj["rules"] = write_rules(out.puzzle.with_givens([[0] * out.puzzle.size] * out.puzzle.size))
    if out.result is not None and out.puzzle is not None:
        res = result_json(out.puzzle, out.result)
        obj.update({k: v for k, v in res.items() if k not in ("grid", "size")})
    if out.error is not None:
        obj.update(status="error", error=str(out.error), exit_code=out.error.exit_code)
        if out.reading is not None:
            obj["answers"] = out.reading.texts()
    obj["timings"] = {k: round(v, 6) for k, v in out.timings.items()}
    return obj
