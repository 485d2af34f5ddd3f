"""README.md cannot rot: its Python examples run against the emulator, and its reference
sections (options, environment variables, commands, layout) match the code.

Each ```python block runs as a test of its own, in a fresh namespace in this process
(``exec`` with ``__name__ == "__main__"``). The blocks are complete programs; a
subprocess per block would pay the two SDKs' import (about 2 s of CPU) every time, for
no more isolation than the conftest's autouse fixture already gives each test: fast
defaults (``max_wait=0.05`` and quick polls), a journal of its own in a temporary
``DEFERRABLE_STORE``, and unpatched SDKs afterwards. The SDKs find the test's emulator
(its batches end at once) through ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL`` and dummy
keys, as the quickstart tells a user to. A block is compiled under README.md's name at
its own line numbers, so a traceback points at the README line.

A block deliberately not run starts with a ``# not run: <reason>`` line. They must stay
rare (at most `MAX_NOT_RUN`) and each must give its reason.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import logging
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deferrable import Options
from deferrable.cli import _parser
from deferrable.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PACKAGE = ROOT / "src" / "deferrable"
MAX_NOT_RUN = 2
NOT_RUN = "# not run:"
LANGUAGES = {"python", "bash", "text"}
"""The fences README.md may use: a Python block cannot hide under ``py`` or no tag."""
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    language: str
    line: int
    """The README line of the block's first line of code."""
    code: str


def readme_blocks() -> list[Block]:
    """The fenced blocks of README.md, in order."""
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    opened: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line)
        if fence is None:
            if opened is not None:
                body.append(line)
        elif opened is None:
            opened, body = (fence.group(1), number + 1), []
        else:
            blocks.append(Block(opened[0], opened[1], "\n".join(body) + "\n"))
            opened = None
    assert opened is None, f"README.md:{opened[1] - 1}: a fence is never closed"
    return blocks


BLOCKS = readme_blocks()
PYTHON = [block for block in BLOCKS if block.language == "python"]
RUN = [block for block in PYTHON if not block.code.startswith(NOT_RUN)]


def section(heading: str) -> str:
    """The text under `heading` (a whole ``#...`` line) up to the next heading of its level
    or above."""
    text = README.read_text(encoding="utf-8")
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    ends = [found.start() for found in re.finditer(rf"^#{{1,{level}}} ", text[start:], re.M)]
    return text[start:start + ends[0]] if ends else text[start:]


def cells(row: str) -> list[str]:
    """The cells of a Markdown table row, ``\\|`` unescaped."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def code_spans(text: str) -> list[str]:
    """The `code spans` of `text`, in order."""
    return re.findall(r"`([^`]+)`", text)


@pytest.fixture
def readme_environment(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The quickstart's exports, pointing at this test's emulator; logging as it was after."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "readme-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "readme-test-key")
    root, library = logging.getLogger(), logging.getLogger("deferrable")
    kept = (root.level, list(root.handlers), library.level)
    yield
    root.setLevel(kept[0])
    root.handlers[:] = kept[1]
    library.setLevel(kept[2])


def run_block(block: Block) -> None:
    """Run `block` as a program of its own, its lines numbered as in README.md."""
    code = compile("\n" * (block.line - 1) + block.code, str(README), "exec")
    exec(code, {"__name__": "__main__", "__builtins__": builtins})  # noqa: S102 - our README


@pytest.mark.usefixtures("readme_environment")
@pytest.mark.parametrize("block", RUN, ids=[f"README.md:{block.line}" for block in RUN])
def test_python_block_runs(block: Block) -> None:
    """A Python block of README.md runs as written against the emulator, with no API key."""
    run_block(block)


@pytest.mark.usefixtures("readme_environment")
def test_quickstart_prints_what_the_readme_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """The quickstart prints exactly the output the README shows after it."""
    quickstart = PYTHON[0]
    shown = next(block for block in BLOCKS
                 if block.language == "text" and block.line > quickstart.line)
    capsys.readouterr()
    run_block(quickstart)
    assert capsys.readouterr().out == shown.code


def test_few_python_blocks_are_not_run() -> None:
    """Almost every Python block runs; each one that does not says why, in the README."""
    not_run = [block for block in PYTHON if block.code.startswith(NOT_RUN)]
    assert len(not_run) <= MAX_NOT_RUN, [f"README.md:{block.line}" for block in not_run]
    for block in not_run:
        reason = block.code.splitlines()[0].removeprefix(NOT_RUN).strip()
        assert reason, f"README.md:{block.line}: a block not run must say why"
    assert len(RUN) >= 8


def test_fences_name_a_known_language() -> None:
    """Every fenced block says python, bash or text, so no Python example escapes the runs."""
    unknown = [(block.line, block.language) for block in BLOCKS if block.language not in LANGUAGES]
    assert not unknown


def test_option_table_matches_options() -> None:
    """The options table lists exactly the fields of `Options`, with type, default and variable."""
    rows = [cells(line) for line in section("### Options").splitlines()
            if line.startswith("| `")]
    fields = {field.name: field for field in dataclasses.fields(Options)}
    assert [code_spans(row[0])[0] for row in rows] == list(fields)
    for name_cell, type_cell, default_cell, variable_cell, meaning in rows:
        field = fields[code_spans(name_cell)[0]]
        (shown,) = code_spans(type_cell)  # compared as parsed: quotes and spaces may differ
        assert ast.dump(ast.parse(shown)) == ast.dump(ast.parse(str(field.type))), field.name
        default = ast.literal_eval(code_spans(default_cell)[0])
        assert (type(default), default) == (type(field.default), field.default), field.name
        assert code_spans(variable_cell) == [f"DEFERRABLE_{field.name.upper()}"], field.name
        assert meaning, field.name


def test_environment_section_lists_every_variable() -> None:
    """The environment section names every `DEFERRABLE_*` variable the code reads, and no other."""
    read = {f"DEFERRABLE_{field.name.upper()}" for field in dataclasses.fields(Options)}
    for path in [*PACKAGE.rglob("*.py"), PACKAGE.parent / "deferrable_observe.pth"]:
        read |= set(re.findall(r"DEFERRABLE_[A-Z][A-Z_]*[A-Z]", path.read_text(encoding="utf-8")))
    listed = set(re.findall(r"DEFERRABLE_[A-Z][A-Z_]*[A-Z]", section("### Environment variables")))
    assert listed == read


def test_command_table_lists_every_command() -> None:
    """The command-line table names every `deferrable` subcommand, and no other."""
    commands = next(action.choices for action in _parser()._actions
                    if isinstance(action, argparse._SubParsersAction))
    rows = [cells(line) for line in section("### Command line").splitlines()
            if line.startswith("| `")]
    assert sorted(code_spans(row[0])[0].split()[0] for row in rows) == sorted(commands)


def test_command_lines_in_bash_blocks_parse() -> None:
    """Every `deferrable ...` line of the README's bash blocks is a valid command line."""
    parser = _parser()
    seen = 0
    for block in BLOCKS:
        if block.language != "bash":
            continue
        for offset, line in enumerate(block.code.splitlines()):
            words = shlex.split(line, comments=True)
            starts = [i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] == "deferrable"]
            for start in starts:
                rest = words[start + 1:]
                if "&&" in rest:
                    rest = rest[:rest.index("&&")]
                try:
                    parser.parse_args(rest)
                except SystemExit:
                    pytest.fail(f"README.md:{block.line + offset}: {' '.join(rest)!r} does not parse")
                seen += 1
    assert seen >= 8


def test_layout_names_every_module() -> None:
    """The Layout section names every file of the package, under its directory, and no other."""
    block = next(block for block in BLOCKS if block.code.startswith("src/deferrable/\n"))
    named: set[str] = set()
    packages: set[str] = set()
    directories: list[tuple[int, str]] = []
    for line in block.code.splitlines():
        indent = len(line) - len(line.lstrip())
        while directories and directories[-1][0] >= indent:
            directories.pop()
        names = re.split(r"\s{2,}", line.strip())[0]  # what a line names comes before its text
        if names.endswith("/"):
            directories.append((indent, names))
            packages.add("".join(path for _, path in directories) + "__init__.py")
            continue
        where = "".join(path for _, path in directories)
        named |= {where + name for name in re.findall(r"[\w/]+\.(?:py|pth|typed)\b", names)}
    files = {path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*")
             if path.is_file() and "__pycache__" not in path.parts}
    files.add("src/deferrable_observe.pth")
    assert files - named - packages == set()
    assert named - files == set()


def test_links_within_the_readme_lead_to_a_heading() -> None:
    """Every ``(#anchor)`` link of the README names one of its headings, as GitHub spells it."""
    text = README.read_text(encoding="utf-8")
    outside_code = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    anchors = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", outside_code, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", outside_code))
    assert links - anchors == set()
    assert len(links) >= 5
