"""Every `econash ...` command line shown in README.md, CONTRIBUTING.md and docs/ names a real command
(subcommands of a group included) and only options that command has, so a renamed or removed command
or flag fails here instead of in a reader's shell."""

from __future__ import annotations

import re

import click
import pytest

from econash.cli import build_cli
from econash.plugins import make_plugin_manager

from conftest import REPO

DOCUMENTS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted((REPO / "examples").glob("**/*.md"))]
INLINE = re.compile(r"`(econash [^`]+)`")
FENCE = re.compile(r"^```.*?$(.*?)^```", re.MULTILINE | re.DOTALL)
PROMPT = re.compile(r"^\s*(?:\$\s+)?(econash\s.*)$")
WORD = re.compile(r"^[a-z][a-z-]*$")
OPTION = re.compile(r"^(--?[A-Za-z][\w-]*)")


def command_lines(text: str) -> list[str]:
    """The command lines in inline code and in fenced blocks (continuation lines joined, comments cut)."""
    lines = INLINE.findall(text)
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            if match := PROMPT.match(line):
                lines.append(match.group(1))
    return [line.split(" #")[0].strip() for line in lines]


def documented_commands() -> list[tuple[str, str]]:
    return [(path.relative_to(REPO).as_posix(), line) for path in DOCUMENTS
            for line in command_lines(path.read_text(encoding="utf-8"))]


def option_names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)} | {"-h", "--help"}


def takes_value(command: click.Command) -> set[str]:
    return {name for param in command.params if isinstance(param, click.Option) and not param.is_flag
            for name in param.opts}


def mismatch(cli: click.Group, line: str) -> str | None:
    """Why ``line`` is not a command of ``cli`` (None when it is, or when it is program output such
    as ``econash score: regraded ...``). ``cache stats|clear`` names two subcommands; every option
    after it must be an option of both."""
    commands: list[click.Command] = [cli]
    path = ["econash"]
    skip_value = False
    for word in (w.strip("[]") for w in line.split()[1:]):
        if skip_value:
            skip_value = False
            continue
        if option := OPTION.match(word):
            name = option.group(1)
            if any(name not in option_names(command) for command in commands):
                return f"`{' '.join(path)}` has no option {name}"
            skip_value = "=" not in word and all(name in takes_value(command) for command in commands)
            continue
        group = commands[0]
        if len(commands) > 1 or not isinstance(group, click.Group):
            continue  # an argument of the command
        names = word.split("|")
        if not all(WORD.match(name) for name in names):
            return None if group is cli else f"`{' '.join(path)}` has no command {word}"
        found = [group.get_command(click.Context(group), name) for name in names]
        unknown = [name for name, command in zip(names, found) if command is None]
        if unknown:
            return f"`{' '.join(path)}` has no command {' or '.join(unknown)}"
        commands = [command for command in found if command is not None]
        path.append(word)
    return None


@pytest.fixture(scope="module")
def cli() -> click.Group:
    return build_cli(make_plugin_manager(warn=False))


def test_documents_show_command_lines():
    assert len(documented_commands()) > 40


def test_every_documented_command_exists_with_its_options(cli):
    wrong = [f"{doc}: {line}: {why}" for doc, line in documented_commands() if (why := mismatch(cli, line))]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("line", "why"), [
    ("econash evaluate --task arith", "`econash` has no command evaluate"),
    ("econash cache stats|purge", "`econash cache` has no command purge"),
    ("econash run --test-sise 3", "`econash run` has no option --test-sise"),
    ("econash --verbose run", "`econash` has no option --verbose"),
])
def test_the_check_catches_a_command_or_option_that_does_not_exist(cli, line, why):
    assert mismatch(cli, line) == why


def test_program_output_and_arguments_are_not_commands(cli):
    assert mismatch(cli, "econash score: regraded runs/demo (cot on gsm8k); no model was called") is None
    assert mismatch(cli, "econash list backends|tasks|methods") is None
    assert mismatch(cli, "econash run --task arith --method cot") is None
