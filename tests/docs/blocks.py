"""The code blocks of the documentation, with what the docs test does with each.

Every fenced block in `README.md`, `docs/*.md` and `examples/**/README.md` is either checked or
marked as not runnable, with the reason. An HTML comment right before the block says how:

| directive                        | the block is …                                                   |
|----------------------------------|------------------------------------------------------------------|
| (none) on `sh`/`console`         | run with bash (`console`: only its `$ ` lines), `set -e`           |
| (none) on `toml` / `json`        | parsed                                                           |
| (none) on `text`                 | output or a diagram: not code                                    |
| `<!-- docs: skip: REASON -->`    | not run, for REASON (a real server elsewhere, installs, …)       |
| `<!-- docs: file PATH -->`       | written to PATH (relative to the working directory), then parsed |
| `<!-- docs: plugin ID -->`       | (python) written as `plugins/ID/plugin.py` (in `~/workspace`      |
|                                  | unless `cwd` says where) and loaded: it must load without error  |
| `<!-- docs: run -->`             | (python) run as a script with the project's interpreter          |
| `<!-- docs: config -->`          | (toml) a `plughost.toml`: a workspace with it must load           |
| `<!-- docs: manifest -->`        | (toml) a `plugin.toml`: must validate                            |
| `<!-- docs: fails -->`           | (sh) must exit non-zero (an error example)                       |
| `<!-- docs: host ARGS -->`       | (sh) run while `plughost run --no-console ARGS` serves (on a free |
|                                  | port, which `127.0.0.1:3210` in the block stands for)            |
| `<!-- docs: cwd DIR -->`         | run in DIR (relative to the repository copy; `~/…`: the home)     |
| `<!-- docs: needs TOOL,… -->`     | needs system tools: skipped (CI: failed) when one is missing     |

Several directives may share one comment, separated by ` · ` or newlines. A block in any other
language, an unlabelled one or an indented one is an error: label it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

RUNNABLE = {"sh", "console"}
PARSED = {"toml", "json"}
NOT_CODE = {"text"}
KNOWN = RUNNABLE | PARSED | NOT_CODE | {"python"}
WITH_ARGUMENT = {"skip", "file", "plugin", "host", "cwd", "needs"}
FLAGS = {"run", "config", "manifest", "fails"}


@dataclass
class Block:
    """One fenced block and its directives."""

    doc: Path
    line: int
    lang: str
    code: str
    directives: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def commands(self) -> str:
        """The shell text to run: a `console` block's `$ ` lines, a `sh` block as it is."""
        if self.lang != "console":
            return self.code
        return "\n".join(line[2:] for line in self.code.splitlines() if line.startswith("$ "))


def parse_directives(comment: str) -> tuple[dict[str, str], list[str]]:
    """The directives of one `<!-- docs: … -->` comment, and what is wrong with it."""
    body = comment.strip().removeprefix("<!--").removesuffix("-->").strip()
    if not body.startswith("docs:"):
        return {}, []
    directives: dict[str, str] = {}
    problems: list[str] = []
    for raw in body.removeprefix("docs:").replace("\n", " · ").split(" · "):
        part = raw.strip()
        if not part:
            continue
        name, _, value = part.partition(":" if part.startswith("skip") else " ")
        name, value = name.strip(), value.strip()
        if name in WITH_ARGUMENT and not value:
            problems.append(f"directive '{name}' needs a value (e.g. 'skip: why it is not run')")
        elif name not in WITH_ARGUMENT | FLAGS:
            problems.append(f"unknown directive '{name}'; known: {', '.join(sorted(WITH_ARGUMENT | FLAGS))}")
        directives[name] = value
    return directives, problems


def blocks_of(path: Path, root: Path) -> list[Block]:
    """Every code block of one markdown file, with its directives and problems."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    found: list[Block] = []
    for n, token in enumerate(tokens):
        if token.type not in ("fence", "code_block"):
            continue
        line = (token.map[0] + 1) if token.map else 0
        block = Block(path.relative_to(root), line, token.info.strip().split(" ")[0], token.content)
        previous = tokens[n - 1] if n else None
        if previous is not None and previous.type == "html_block":
            block.directives, block.problems = parse_directives(previous.content)
        if token.type == "code_block":
            block.problems.append("an indented code block: fence it and label its language")
        elif block.lang not in KNOWN:
            label = f"'{block.lang}'" if block.lang else "no language"
            block.problems.append(f"{label}: label it sh, console, python, toml, json or text")
        elif block.lang == "python" and not block.directives.keys() & {"skip", "file", "plugin", "run"}:
            block.problems.append("a python block needs a directive: plugin ID, file PATH, run, or skip: REASON")
        found.append(block)
    return found


def documents(root: Path) -> list[Path]:
    """The documentation the docs test covers."""
    return [
        root / "README.md",
        *sorted((root / "docs").glob("*.md")),
        *sorted(p for p in (root / "examples").rglob("README.md") if "node_modules" not in p.parts),
    ]
