"""``vlm-solve`` as a user runs it: a real process, real exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vlm_sudoku.solver import parse_grid, violated
from vlm_sudoku.solver.generate import generate
from vlm_sudoku.solver.fpuzzles import write_fpuzzles

from .paths import PUZZLES

HARD = "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"
MULTI = "....3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"
CONFLICT = "44..3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vlm_sudoku.runtime.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]


def test_solves_and_prints_the_grid() -> None:
    proc = run("--grid", HARD)
    assert proc.returncode == 0, proc.stderr
    assert "4 6 8 | 9 3 1 | 5 2 7" in proc.stdout


def test_json_contract_solved() -> None:
    proc = run("--grid", HARD, "--json")
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert out["status"] == "solved"
    assert out["solution"] == "468931527751624839392578461134756298289413675675289314846192753513867942927345186"
    assert isinstance(out["seconds"], float)
    assert violated(parse_grid(HARD), parse_grid(out["solution"]).givens) == []


def test_json_contract_multiple() -> None:
    proc = run("--grid", MULTI, "--json")
    assert proc.returncode == 4
    out = json.loads(proc.stdout)
    assert out["status"] == "multiple_solutions"
    a, b = out["solutions"]
    assert a != b
    for s in (a, b):
        assert violated(parse_grid(MULTI), parse_grid(s).givens) == []
    assert "solution" not in out


def test_json_contract_no_solution() -> None:
    proc = run("--grid", CONFLICT, "--json")
    assert proc.returncode == 3
    out = json.loads(proc.stdout)
    assert out["status"] == "no_solution" and "solution" not in out
    assert_one_line_error(proc, 3, "appears twice in row 1")


@pytest.mark.skipif(not PUZZLES.is_dir(), reason="../shared/data/puzzles is not checked out")
def test_16x16_hex_symbols_come_back_in_kind(tmp_path: Path) -> None:
    line = next(l for l in (PUZZLES / "classic_16x16_cases.txt").read_text().splitlines() if l.startswith("easy1"))
    _, _, grid, solution = line.split(":")
    out = json.loads(run("--grid", grid, "--json").stdout)
    assert out["solution"] == solution


def test_fpuzzles_file_and_stdin(tmp_path: Path) -> None:
    puzzle, solution = generate(6, ["killer"], seed=3)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(write_fpuzzles(puzzle)))
    expected = "".join(str(v) for row in solution for v in row)
    for args, stdin in ((["--fpuzzles", str(path)], None), (["--fpuzzles", "-"], path.read_text())):
        proc = run(*args, "--json", stdin=stdin)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["solution"] == expected


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--grid", "123"], "needs 16, 36, 81 or 256 symbols"),
        (["--grid", "x" + "." * 80], "symbol 'x' is not allowed"),
        (["--fpuzzles", "/nonexistent/p.json"], "no such file"),
        (["--fpuzzles", "/"], "is a directory"),
        (["--rules", "/nonexistent/r.json"], "no such file"),
    ],
)
def test_input_errors_exit_1(args: list[str], needle: str) -> None:
    assert_one_line_error(run(*args), 1, needle)


@pytest.mark.parametrize(
    "content, needle",
    [
        ("{not json", "not JSON"),
        ('{"size": 9, "grid": [], "spiral": true}', "9 rows of 9 cells"),
        (json.dumps({"size": 4, "grid": [[{}] * 4] * 4, "spiral": [{"cells": ["R1C1"]}]}), "unknown constraint 'spiral'"),
        (json.dumps({"size": 4, "grid": [[{}] * 4] * 4, "killercage": [{"cells": ["R1C1", "R1Q2"]}]}), "'R1Q2'"),
        ("[]", "holds a JSON object"),
    ],
)
def test_bad_fpuzzles_files_exit_1(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert_one_line_error(run("--fpuzzles", str(path)), 1, needle)


def test_unreadable_binary_file_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "img.json"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    assert_one_line_error(run("--fpuzzles", str(path)), 1, "cannot read")


def test_contradictory_rules_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"size":4,"rules":[{"type":"killer","cells":["r1c1","r1c2"],"sum":3},'
                    '{"type":"killer","cells":["r1c1","r1c2"],"sum":4}],"grid":"................"}')
    assert_one_line_error(run("--rules", str(path)), 3, "no solution")


@pytest.mark.parametrize("args", [[], ["--grid", HARD, "--fpuzzles", "x.json"], ["--bogus"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_help_has_examples() -> None:
    proc = run("--help")
    assert proc.returncode == 0 and "Examples:" in proc.stdout and "Exit status" in proc.stdout
