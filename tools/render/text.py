"""Words on the picture: rule titles and sentences, and filler text for pages.

The model reads every rule from the image alone, so rules that leave no mark in
the grid (anti-knight, non-consecutive, "all dots are given"...) always come with
a sentence here; rules that do show get a title and sentence only sometimes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from ...solver.constraints.groups import DiagonalNegative, DiagonalPositive
from ...solver.constraints.lines import Whisper
from ...solver.constraints.pairs import Kropki, KropkiNegative
from ...solver.puzzle import Puzzle
from .draw import UNMARKED

TITLES = {
    "killer": ("Killer",), "thermo": ("Thermo", "Thermometer"), "arrow": ("Arrow",),
    "whisper": ("German Whispers", "Whispers"), "renban": ("Renban",), "palindrome": ("Palindrome",),
    "between": ("Between Lines",), "kropki": ("Kropki", "Dots"), "xv": ("XV",), "odd_even": ("Odd-Even", "Odd/Even"),
    "little_killer": ("Little Killer",), "sandwich": ("Sandwich",), "diagonal": ("Diagonal", "X"),
    "antiknight": ("Anti-Knight", "Antiknight"), "antiking": ("Anti-King", "Antiking"),
    "nonconsecutive": ("Non-Consecutive", "Nonconsecutive"), "windoku": ("Windoku", "Hyper"),
    "disjoint": ("Disjoint Groups", "DG"), "jigsaw": ("Jigsaw", "Irregular"), "extra_region": ("Extra Regions",),
}


def _digits(puzzle: Puzzle) -> str:
    sym = puzzle.alphabet.symbols
    return f"1-{sym[-1]}" if puzzle.size <= 9 else f"1-9 and A-{sym[-1]}"


def _box_word(puzzle: Puzzle, rng: random.Random) -> str:
    if puzzle.box is None:
        return rng.choice(("outlined region", "bold region", "irregular region"))
    br, bc = puzzle.box
    return rng.choice((f"{br}x{bc} box", "box", f"{br}x{bc} block", "region"))


def _groups(puzzle: Puzzle) -> list[str]:
    """Rule groups as a reader names them, in the order of the puzzle's rules."""
    out = ["jigsaw"] if puzzle.box is None else []
    for con in puzzle.constraints:
        rule = con.rule
        key = {"odd": "odd_even", "even": "odd_even", "diagonal+": "diagonal", "diagonal-": "diagonal",
               "kropki_negative": "kropki", "xv_negative": "xv"}.get(rule, rule)
        if key not in out:
            out.append(key)
    return out


def must_explain(puzzle: Puzzle) -> bool:
    """True when some rule is invisible in the grid and only text can tell it."""
    return any(isinstance(c, UNMARKED) for c in puzzle.constraints)


def title(puzzle: Puzzle, rng: random.Random) -> str:
    names = [rng.choice(TITLES[g]) for g in _groups(puzzle) if g in TITLES]
    if not names:
        return rng.choice(("Sudoku", "SUDOKU", "Classic Sudoku", "Sudoku"))
    name = " ".join(names)
    if names == ["X"]:
        return rng.choice(("Sudoku X", "X-Sudoku"))
    return name if name in ("Windoku", "Renban", "German Whispers") and rng.random() < 0.5 else f"{name} Sudoku"


#: The rules a text names, as the vision read-out is taught them (train/data.py TEXT_GROUPS): the title groups, and
#: the negative constraints, whose sentence ("all possible dots are given") differs from the marking's own.
TEXT_GROUPS = (*TITLES, "kropki_negative", "xv_negative")


# The words in a line of text that state a rule given in words only (runtime/rules_check.py WORDS_ONLY), in the
# titles and sentences above. Why words and not the sentence a line belongs to: a sentence wraps, and a line that
# reads "contain the same digit." says nothing of which rule it ends; a text crop is taught what its own words say.
STATED_BY = {
    "antiknight": re.compile(r"knight", re.IGNORECASE),
    "antiking": re.compile(r"\bking\b|anti-?king|diagonally touching", re.IGNORECASE),
    "nonconsecutive": re.compile(r"non-?consecutive|orthogonally|\bshare\b", re.IGNORECASE),
    "disjoint": re.compile(r"(?i:disjoint|\bposition\b)|\bDG\b"),  # ("DG Sudoku", in capitals only)
}


def stated(line: str) -> tuple[str, ...]:
    """The words-only rules a line of text names (STATED_BY), in that order."""
    return tuple(rule for rule, words in STATED_BY.items() if words.search(line))


def stating_words(words: Sequence[str]) -> list[tuple[str, ...]]:
    """For each word of a line (in order), the words-only rules (STATED_BY) whose words it is part of: what the
    text crops' tokens over it are taught (train/data.py line_token_labels)."""
    line, spans = "", []
    for word in words:
        start = len(line) + (1 if line else 0)
        line = f"{line} {word}" if line else word
        spans.append((start, start + len(word)))
    out: list[list[str]] = [[] for _ in words]
    for rule, pattern in STATED_BY.items():
        for m in pattern.finditer(line):
            for k, (a, b) in enumerate(spans):
                if a < m.end() and m.start() < b and rule not in out[k]:
                    out[k].append(rule)
    return [tuple(rules) for rules in out]


def title_groups(puzzle: Puzzle) -> tuple[str, ...]:
    """The rule groups :func:`title` names (TEXT_GROUPS)."""
    return tuple(g for g in _groups(puzzle) if g in TITLES)


def sentences(puzzle: Puzzle, rng: random.Random, *, visible_too: bool = True) -> list[str]:
    """Rule sentences: every unmarked rule, and (with ``visible_too``) the visible ones as well."""
    return [text for _group, text in rule_sentences(puzzle, rng, visible_too=visible_too)]


def rule_sentences(puzzle: Puzzle, rng: random.Random, *, visible_too: bool = True) -> list[tuple[str | None, str]]:
    """:func:`sentences`, each with the rule group it states (TEXT_GROUPS; None for the normal rules), drawing
    the same random numbers. Why: the vision read-out learns which rule each line of text names."""
    n = puzzle.size
    sym = puzzle.alphabet.symbols
    digits = _digits(puzzle)
    out: list[tuple[str | None, str]] = [(None, rng.choice((
        "Normal sudoku rules apply.",
        f"Place the digits {digits} once each in every row, column and {_box_word(puzzle, rng)}.",
        f"Fill the grid so that every row, column and {_box_word(puzzle, rng)} contains the digits {digits}.",
    )))]
    cons = puzzle.constraints
    rules = {c.rule for c in cons}
    white_dots = any(isinstance(c, Kropki) and c.color == "white" for c in cons)
    negative_colours = sorted(c.color for c in cons if isinstance(c, KropkiNegative))
    gap = next((c.gap(n) for c in cons if isinstance(c, Whisper)), (n + 1) // 2)
    diagonals = [c for c in cons if isinstance(c, (DiagonalPositive, DiagonalNegative))]
    for group in _groups(puzzle):
        unmarked = group in ("antiknight", "antiking", "nonconsecutive", "disjoint") or (
            group == "kropki" and "kropki_negative" in rules) or (group == "xv" and "xv_negative" in rules)
        if not (visible_too or unmarked):
            continue
        if group == "jigsaw":
            border = rng.choice(('bold outlined', 'irregular', 'thick-bordered'))
            out.append((group, f"Each {border} region contains the digits {digits} once."))
        elif group == "killer":
            out.append((group, rng.choice((
                "Digits in each cage sum to the small clue in its top-left corner and do not repeat within the cage.",
                "Cages: the digits add up to the total shown, with no repeats within a cage.",
            ))))
        elif group == "thermo":
            out.append((group, rng.choice((
                "Digits along a thermometer increase from the bulb end.",
                "Along each grey thermometer, digits strictly increase starting at the bulb."))))
        elif group == "arrow":
            out.append((group, rng.choice(("Digits along an arrow sum to the digit in its circle.",
                                           "The digit in a circle equals the sum of the digits on its arrow."))))
        elif group == "whisper":
            out.append((group, f"Adjacent digits along a green line differ by at least {gap}."))
        elif group == "renban":
            out.append((group, rng.choice(("Each purple line contains a set of consecutive digits in any order.",
                                           "Pink lines hold non-repeating consecutive digits, in any order."))))
        elif group == "palindrome":
            out.append((group, "Grey lines read the same in both directions."))
        elif group == "between":
            out.append((group, "Digits on a line lie strictly between the digits in the circles at its ends."))
        elif group == "kropki":
            if "kropki" in rules:
                out.append((group, "Cells joined by a white dot hold consecutive digits; cells joined by a black dot "
                                   "hold digits where one is double the other."))
            if negative_colours == ["black", "white"]:
                out.append(("kropki_negative", rng.choice(("All possible dots are given.",
                                                           "All possible white and black dots are shown."))))
            elif negative_colours:
                out.append(("kropki_negative", f"All possible {negative_colours[0]} dots are given."))
            elif rng.random() < 0.5:
                out.append((group, "Not all possible dots are given."))
        elif group == "xv":
            if "xv" in rules:
                out.append((group, "Cells joined by an X sum to 10; cells joined by a V sum to 5."))
            if "xv_negative" in rules:
                out.append(("xv_negative", rng.choice(("All possible X and V are given.",
                                                       "Adjacent cells without an X or V sum to neither 5 nor 10."))))
            elif rng.random() < 0.5:
                out.append((group, "Not all X and V are given."))
        elif group == "odd_even":
            out.append((group, "Grey circles contain odd digits; grey squares contain even digits."))
        elif group == "little_killer":
            out.append((group, "Clues outside the grid give the sum of the digits along the indicated diagonal. "
                               "Digits may repeat on a diagonal."))
        elif group == "sandwich":
            out.append((group, f"Clues outside the grid give the sum of the digits between the 1 and the {sym[-1]} "
                               "in that row or column."))
        elif group == "diagonal":
            if len(diagonals) == 2:
                out.append((group, rng.choice((f"Each main diagonal also contains the digits {digits} once.",
                                               "Digits may not repeat on either marked diagonal."))))
            elif isinstance(diagonals[0], DiagonalPositive):
                out.append((group, f"The diagonal from bottom-left to top-right also contains the digits {digits}."))
            else:
                out.append((group, f"The diagonal from top-left to bottom-right also contains the digits {digits}."))
        elif group == "windoku":
            out.append((group, f"Each shaded window also contains the digits {digits} once."))
        elif group == "extra_region":
            out.append((group, "Digits do not repeat within a shaded region."))
        elif group == "antiknight":
            out.append((group, rng.choice(("Cells a chess knight's move apart cannot contain the same digit.",
                                           "Anti-knight: identical digits may not be a knight's move apart."))))
        elif group == "antiking":
            out.append((group, rng.choice(("Cells a chess king's move apart cannot contain the same digit.",
                                           "Diagonally touching cells cannot contain the same digit."))))
        elif group == "nonconsecutive":
            tail = " (except across a white dot)" if white_dots else ""
            out.append((group, rng.choice(("Orthogonally adjacent cells cannot contain consecutive digits",
                                           "Digits in cells that share an edge never differ by 1")) + tail + "."))
        elif group == "disjoint":
            out.append((group, "Cells in the same position of each box contain different digits."))
    return out


CLASSIC_INSTRUCTIONS = (
    "Complete the grid so that every row, column and 3x3 box contains the digits 1 to 9.",
    "Complétez la grille sachant que chaque carré de 3x3 doit présenter une seule fois les chiffres de 1 à 9 "
    "ainsi que les lignes horizontales et verticales.",
    "Füllen Sie das Gitter so aus, dass jede Zeile, jede Spalte und jedes 3x3-Feld die Zahlen 1 bis 9 enthält.",
    "Fill in the grid so that each row, column and block contains every number exactly once.",
)

WORDS = (
    "the of and to in is was for on that with as by at from his her they this which are be has have had not "
    "but were been one their will would year new more city said after first people over time also two "
    "council school market weather sunday report police water road team season game local week home "
    "president morning night price house music film world news club station train bridge garden river "
    "la le les des une est dans pour sur avec qui par plus son pas ont été sont cette nous vous leur "
    "jeux grille ville jour mots fléchés soleil "
    "der die das und ist nicht mit auf für von dem den ein eine zum zur Zeit Jahr Stadt Woche "
    "Rätsel Lösung Wetter heute morgen"
).split()


def filler_line(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        w = rng.choice(WORDS)
        if rng.random() < 0.08:
            w = w.capitalize()
        if rng.random() < 0.05:
            w = str(rng.randint(2, 2025))
        words.append(w)
        length += len(w) + 1
    line = " ".join(words)
    return line[:chars].rstrip()


def headline(rng: random.Random) -> str:
    return rng.choice((
        "SUDOKU", "Sudoku", "SUDOKU", "Puzzles", "LES JEUX", "Rätsel", "Brain Teasers", "Jeux", "Denksport",
        "Puzzle Corner", "Break", "Games",
    ))


def puzzle_number(rng: random.Random) -> str:
    k = rng.randint(1, 9999)
    return rng.choice((f"No {k}", f"Nr. {k}", f"No. {k}", f"Grille No {k}", f"#{k}", f"Puzzle {k}", f"N° {k}"))


def difficulty(rng: random.Random) -> str:
    return rng.choice((
        "Difficulty: " + rng.choice(("Easy", "Medium", "Hard", "Expert")),
        f"Difficulté: {rng.randint(1, 3)}/3", "Schwierigkeit: " + rng.choice(("leicht", "mittel", "schwer")),
        rng.choice(("Easy", "Medium", "Hard", "Fiendish", "Gentle", "Tough")),
        "Level " + str(rng.randint(1, 5)),
    ))


def wrap(text: str, fits) -> list[str]:
    """Greedy word wrap: ``fits(line)`` says whether a line fits the width."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if cur and not fits(trial):
            lines.append(cur)
            cur = word
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


__all__: Sequence[str] = ["TEXT_GROUPS", "must_explain", "rule_sentences", "sentences", "title", "title_groups", "wrap"]
