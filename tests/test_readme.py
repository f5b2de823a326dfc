"""README's two opening commands are the contract: keep .ci/run running the same test command."""

from __future__ import annotations

import re

from .paths import ROOT


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)[:2]


def test_readme_opens_with_a_main_command_and_a_test_command() -> None:
    main, tests = _commands()
    assert "pip install" in main and "vlm-solve" in main
    assert "pip install" in tests and "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, tests = _commands()
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
