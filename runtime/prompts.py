"""The Qwen2-VL chat prompt as token ids, without jinja, and the product's two questions.

Qwen2-VL's chat template (``add_generation_prompt=True``, ``add_vision_id`` off)
renders one user turn holding images then text as::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n<|vision_start|><|image_pad|><|vision_end|>...TEXT<|im_end|>\\n
    <|im_start|>assistant\\n

and ``Qwen2VLProcessor`` then repeats each ``<|image_pad|>`` once per merged
image patch (``preprocess.num_image_tokens``). The ids here are assembled
piece by piece: the text pieces go through the tokenizer (special-token
strings inside them still split out, as in transformers) and the special
tokens are inserted as ids, so thousands of pad tokens never pass through the
tokenizer. Both give the same ids because the tokenizer splits on special
tokens before any normalisation or pre-tokenisation.

The two questions of a puzzle (rules, digits) are asked about the same image:
``shared_prompt`` returns the common prefix (system turn, user header, the
image, and any common start of the questions) once, and one suffix per
question, so the runtime prefills the image once and reuses the KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..solver.errors import InputError
from .tokenizer import Tokenizer

SYSTEM_PROMPT = "You are a helpful assistant."

# The two questions of every puzzle. A real Qwen2-VL-Instruct and the embedded default model
# answer the same text; the rules question shows the schema of docs/rules-format.md.
RULES_PROMPT = (
    "What are the rules of this Sudoku? Answer with compact JSON only: "
    '{"size":N,"rules":[...]} where N is 4, 6, 9 or 16. If the regions are irregular add '
    '"regions": one string per row, a region symbol per cell. List every rule shown as an object '
    'with a "type", e.g. {"type":"killer","cells":["r1c1","r1c2"],"sum":7}, '
    '{"type":"thermo","cells":["r2c2","r3c3"]}, {"type":"kropki","color":"white","cells":["r4c4","r4c5"]}, '
    '{"type":"antiknight"}. A classic Sudoku is {"size":9,"rules":[]}.'
)
DIGITS_PROMPT = (
    "Read the given digits of this Sudoku. Write one line per row, top to bottom, one character per "
    "cell: the digit (1-9, then A-G on 16x16) or '.' for an empty cell. Write only the rows."
)
QUESTIONS: dict[str, str] = {"rules": RULES_PROMPT, "digits": DIGITS_PROMPT}

# The marks map (runtime/marks_map.py): a third question, one per layer, asked only of models that declare the
# layer. Question names are "map:<layer>".
_MAP_ROWS = "Write one line per row, top to bottom, one code per cell: "
_LINE_STEPS = ("'.' off the lines, else the step to the next cell of its line as on a number pad (6 right, 2 down, "
               "3 down-right, 1 down-left, 4 left, 8 up, 7 up-left, 9 up-right), 5 at the line's last cell.")
_LINE_NAMES = {"thermo": ("thermometers", " A thermometer starts at its bulb."),
               "arrow": ("arrows", " An arrow starts at its circle."),
               "whisper": ("German whispers lines", " A line starts at its end nearer the top-left."),
               "renban": ("renban lines", " A line starts at its end nearer the top-left."),
               "palindrome": ("palindrome lines", " A line starts at its end nearer the top-left."),
               "between": ("between lines", " A line starts at its end nearer the top-left.")}
MAP_QUESTIONS: dict[str, str] = {
    "map:regions": "Draw the region walls of this Sudoku as a map. " + _MAP_ROWS
                   + "1 for a thick wall on the cell's right, 2 below it, 3 both, '.' neither.",
    "map:killer": "Draw the killer cages of this Sudoku as a map. " + _MAP_ROWS
                  + "'.' outside the cages, K in a cage, H if its cage goes on to the right, V if it goes on "
                    "down, X both; after the letter, the cage sum printed in that cell.",
    **{f"map:{k}": f"Draw the {name} of this Sudoku as a map. " + _MAP_ROWS + _LINE_STEPS + start
       for k, (name, start) in _LINE_NAMES.items()},
    "map:kropki": "Draw the kropki dots of this Sudoku as a map. " + _MAP_ROWS
                  + "3 x (the dot on its right edge) + (the dot on its bottom edge), where a white dot is 1 and "
                    "a black dot 2; '.' for no dot.",
    "map:xv": "Draw the X and V marks of this Sudoku as a map. " + _MAP_ROWS
              + "3 x (the mark on its right edge) + (the mark on its bottom edge), where X is 1 and V is 2; "
                "'.' for no mark.",
    "map:odd_even": "Mark the odd and even cells of this Sudoku as a map. " + _MAP_ROWS
                    + "1 for an odd cell (grey circle), 2 for an even cell (grey square), '.' neither.",
    "map:outside": "Draw the clues outside this Sudoku's grid as a map of the grid with a ring of places around it. "
                   "Write one line per row of places, top to bottom, one code per place: '.' for none and for "
                   "every cell of the grid, S and the sum for a sandwich clue, DR, DL, UR or UL (the way its arrow "
                   "points) and the sum for a little killer clue.",
}

# A clue crop (runtime/clue_crops.py): one printed clue number cut out of the picture, asked of models that declare
# the crops.
CLUE_PROMPT = "This is one clue of a Sudoku, enlarged. What number is printed as the clue? Answer with the number."

# A text crop (runtime/text_crops.py): one line of words printed near a Sudoku, cut out level and enlarged, asked of
# models that declare the crops.
TEXT_PROMPT = ("This is one line of text printed near a Sudoku, enlarged. Which of these rules does it state: "
               "antiknight, antiking, nonconsecutive, disjoint? Answer with their names, or none.")


def question_text(name: str) -> str:
    """The text of a question by name: the product's two, a marks-map layer's ("map:<layer>"), the clue crop's
    ("clue") or the text crop's ("text")."""
    if name == "clue":
        return CLUE_PROMPT
    if name == "text":
        return TEXT_PROMPT
    return QUESTIONS[name] if name in QUESTIONS else MAP_QUESTIONS[name]


def crop_prompt_ids(tokenizer: Tokenizer, question: str, image_tokens: int) -> list[int]:
    """The whole prompt of a crop's question ("clue", "text") about one crop of ``image_tokens`` merged tokens, the
    crop its only image: what the runtime, the torch baseline and the training drills all ask."""
    return prompt_ids(tokenizer, question_text(question), [image_tokens])


class PromptError(InputError, ValueError):
    """A prompt text the chat template cannot carry (it holds a special-token string)."""


@dataclass(frozen=True)
class SharedPrompt:
    """Token ids of several questions about the same images: one shared prefix, one suffix each.

    ``prefix_ids + suffix_ids[name]`` is exactly the prompt transformers builds for question
    ``name``; every suffix keeps at least its generation header so it is never empty.
    """

    prefix_ids: list[int]
    suffix_ids: dict[str, list[int]]

    def full(self, name: str) -> list[int]:
        return self.prefix_ids + self.suffix_ids[name]


def prefix_ids(tokenizer: Tokenizer, image_token_counts: Sequence[int], system: str = SYSTEM_PROMPT) -> list[int]:
    """System turn, user header and the images (each <|vision_start|> pads <|vision_end|>)."""
    sp = tokenizer.specials
    ids = _system_turn(tokenizer, system) + [sp.im_start, *tokenizer.encode("user\n")]
    for count in image_token_counts:
        if count < 1:
            raise ValueError(f"an image takes at least one <|image_pad|> token, got {count}")
        ids += [sp.vision_start, *([sp.image_pad] * int(count)), sp.vision_end]
    return ids


def suffix_ids(tokenizer: Tokenizer, question: str) -> list[int]:
    """The question, the end of the user turn and the assistant generation header."""
    return tokenizer.encode(_check_text(tokenizer, question, "question")) + _generation_header(tokenizer)


def prompt_ids(
    tokenizer: Tokenizer, question: str, image_token_counts: Sequence[int], system: str = SYSTEM_PROMPT
) -> list[int]:
    """The whole prompt for one question: what ``apply_chat_template`` + ``Qwen2VLProcessor`` give."""
    if not image_token_counts:
        # No <|vision_end|> between "user\n" and the question: they tokenize as one piece of text.
        sp = tokenizer.specials
        return (
            _system_turn(tokenizer, system)
            + [sp.im_start, *tokenizer.encode("user\n" + _check_text(tokenizer, question, "question"))]
            + _generation_header(tokenizer)
        )
    return prefix_ids(tokenizer, image_token_counts, system) + suffix_ids(tokenizer, question)


def _check_text(tokenizer: Tokenizer, text: str, what: str) -> str:
    # transformers would turn these strings into control tokens (and expand <|image_pad|> as if it
    # were another image), so a prompt holding one can only be a mistake or an injection.
    for token in tokenizer.special_strings:
        if token in text:
            raise PromptError(f"the {what} text contains the special token {token}, which only the template may place")
    return text


def _system_turn(tokenizer: Tokenizer, system: str) -> list[int]:
    sp = tokenizer.specials
    _check_text(tokenizer, system, "system")
    return [sp.im_start, *tokenizer.encode(f"system\n{system}"), sp.im_end, *tokenizer.encode("\n")]


def _generation_header(tokenizer: Tokenizer) -> list[int]:
    sp = tokenizer.specials
    return [sp.im_end, *tokenizer.encode("\n"), sp.im_start, *tokenizer.encode("assistant\n")]


def split_prompt(
    tokenizer: Tokenizer, question: str, image_token_counts: Sequence[int], system: str = SYSTEM_PROMPT
) -> tuple[list[int], list[int]]:
    """(prefix_ids, suffix_ids) for one question, split right after the last image."""
    _need_image(image_token_counts)
    return prefix_ids(tokenizer, image_token_counts, system), suffix_ids(tokenizer, question)


def shared_prompt(
    tokenizer: Tokenizer,
    image_token_counts: Sequence[int],
    questions: Mapping[str, str] = QUESTIONS,
    system: str = SYSTEM_PROMPT,
) -> SharedPrompt:
    """One prefix (system, image, and the questions' common leading tokens) and a suffix per question.

    The common leading tokens are taken from the token ids, not the text, so the split
    never changes how any question tokenizes.
    """
    if not questions:
        raise ValueError("shared_prompt needs at least one question")
    _need_image(image_token_counts)
    prefix = prefix_ids(tokenizer, image_token_counts, system)
    suffixes = {name: suffix_ids(tokenizer, text) for name, text in questions.items()}
    # Keep at least one token in every suffix (the decoder needs a new token to produce logits);
    # with a single question nothing beyond the image is shared.
    tail = min(len(s) for s in suffixes.values()) - 1
    common = 0
    if len(suffixes) > 1:
        first, *rest = suffixes.values()
        while common < tail and all(s[common] == first[common] for s in rest):
            common += 1
    shared = prefix + next(iter(suffixes.values()))[:common]
    return SharedPrompt(shared, {name: s[common:] for name, s in suffixes.items()})


def _need_image(image_token_counts: Sequence[int]) -> None:
    # The split after <|vision_end|> is exact only because a special token ends the prefix.
    if not image_token_counts:
        raise ValueError("a shared prefix needs at least one image (the split point follows the last image)")


def render_text(question: str, num_images: int = 1, system: str = SYSTEM_PROMPT) -> str:
    """The chat-template string before pad expansion (one <|image_pad|> per image), for display."""
    images = "<|vision_start|><|image_pad|><|vision_end|>" * num_images
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{images}{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
