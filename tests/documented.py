"""The commands the docs show, as text, so tests run them as a user would copy them (issue 17).

`shown_commands(doc)` lists every command line in a doc's code blocks (indented or fenced; backslash
continuations and multi-line quotes joined, trailing `# comments` dropped). `documented(doc, command, fill)` is how a test runs
one: it fails when the doc no longer shows that exact text, replaces the placeholders named in `fill`
(`<checkpoint dir>` -> a real one) and returns the argv; the test appends only overrides that keep the
command fast. tests/docs/test_documented_commands.py fails when a shown command has no such test.
"""

import re
import shlex
from pathlib import Path

from services import BIN

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "datasets/README.md", "infra/README.md", "docs/operations.md")
# A code-block line is a command when it starts with one of these words (the rest are file trees, YAML, JSON).
COMMAND_WORDS = (".venv/bin/tubelab", "tubelab", "make", "ray", "python", "python3", "pip", "aws", "kubectl",
                 "docker", "export")


def code_lines(text: str) -> list[str]:
    """The lines of a markdown text's code blocks: fenced, or indented 4 spaces after a blank line."""
    lines, out, fenced, indented = text.splitlines(), [], False, False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            out.append(line)
            continue
        starts_block = line.startswith("    ") and (i == 0 or not lines[i - 1].strip())
        indented = line.startswith("    ") and (indented or starts_block) and not re.match(r"\s*([-*]\s|\|)", line)
        if indented:
            out.append(line[4:])
    return out


def strip_comment(line: str) -> str:
    """`cmd args   # why` -> `cmd args` (a `#` after whitespace, outside quotes)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def quotes_closed(line: str) -> bool:
    try:
        shlex.split(line)
        return True
    except ValueError:
        return False


def shown_commands(doc: str) -> list[str]:
    commands, pending = [], ""
    for line in code_lines((ROOT / doc).read_text()):
        line = strip_comment(line.strip())
        if pending:
            line, pending = f"{pending} {line}", ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if not quotes_closed(line):  # a quoted argument spanning lines (a runtime-env JSON)
            pending = line
            continue
        if line.split(" ", 1)[0] in COMMAND_WORDS:
            commands.append(re.sub(r"\s+", " ", line))
    return commands


def documented_line(doc: str, command: str, fill: dict[str, str] | None = None) -> str:
    """`command` as `doc` shows it, its placeholders replaced by `fill` (for `bash -c`)."""
    assert command in shown_commands(doc), f"{doc} no longer shows `{command}`: update the test with the doc"
    for placeholder, value in (fill or {}).items():
        assert placeholder in command, f"`{placeholder}` is not in `{command}`"
        command = command.replace(placeholder, value)
    return command


def documented(doc: str, command: str, fill: dict[str, str] | None = None) -> list[str]:
    """argv of documented_line(...); a program this venv has (`.venv/bin/tubelab`, `tubelab`, `ray`) is this venv's."""
    argv = shlex.split(documented_line(doc, command, fill))
    name = argv[0].removeprefix(".venv/bin/")
    if "/" not in name and (BIN / name).exists():
        argv[0] = str(BIN / name)
    return argv
