"""The README as a front door: short, and its commands the ones CI and users run."""

import re

from tests.project import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
QUICK_START = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && kedro run",
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && pytest',
)
MAX_README_LINES = 250


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a markdown ``text``."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_the_quick_start_commands_are_there_word_for_word():
    commands = [block.strip() for block in code_blocks(README.read_text(), "bash")]
    assert commands[:2] == list(QUICK_START)


def test_ci_runs_the_readme_test_command_and_builds_the_docs_strictly():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci
    assert "mkdocs build --strict" in ci
    assert ci.rstrip().endswith("python -m pytest")
