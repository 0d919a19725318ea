"""The docs cannot go stale: every shell command and Python snippet in README.md and docs/*.md
runs here, and every mdreg name and repository path they mention exists.

Conventions (docs/README of the conventions: docs/core.md, "Docs that run"):

* a fenced ```bash block is run, line by line (a line ending in ``\\`` continues), in one
  scratch folder per document where ``recipes/`` and ``tools/`` are the repository's, in the
  order the document gives them (a later command may use what an earlier one made); a
  ```python block is run as a script in the same folder; ```text blocks (synopses, outputs) are
  not run;
* ``<!-- test: ARGS -->`` on the line before a block appends ARGS to each ``python tools/...``
  command of the block (tiny overrides: fewer steps, a smaller model); ``<!-- test: exit N -->``
  expects that exit status of the block's last command; ``<!-- test: file PATH -->`` writes the
  block to PATH in the scratch folder (a module or recipe of the reader's own) instead of running
  it; ``<!-- test: skip REASON -->`` leaves a block out and must say why;
* names: a backticked ``mdreg.x.y`` must import (a module, or an attribute of one), and every
  ``mdreg/...``, ``tools/...``, ``recipes/...``, ``tests/...`` or ``docs/...`` path must exist.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mdreg.config.lazy import import_object
from mdreg.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- test: (.*) -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
TOOL = re.compile(r"^(python[0-9.]* (?:-m \S+ )?tools/\S+\.py|mdreg-[a-z-]+)\b")


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    text: str
    marker: str = ""


def blocks(doc: Path) -> list[Block]:
    out, lines, i = [], doc.read_text().splitlines(), 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            marker = MARKER.match(lines[i - 1]) if i else None
            start, i = i + 1, i + 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            out.append(Block(doc, start, fence.group(1), "\n".join(lines[start:i]), marker.group(1) if marker else ""))
        i += 1
    return out


def commands(block: Block) -> list[str]:
    """The block's shell commands: continuation lines joined, comments and prompts dropped."""
    out, pending = [], ""
    for raw in block.text.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        line = _without_comment(line)
        if line:
            out.append(line)
    return out


def _without_comment(line: str) -> str:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split, lexer.commenters = True, "#"
    try:
        list(lexer)
    except ValueError:
        return line.strip()
    quoted, out = None, []
    for ch in line:  # cut at the first # outside quotes
        if quoted:
            quoted = None if ch == quoted else quoted
        elif ch in "'\"":
            quoted = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out).strip()


def with_args(command: str, args: str) -> str:
    """``args`` appended to every tool invocation of ``command`` (``a && b`` too)."""
    return " && ".join(f"{part.strip()} {args}" if TOOL.match(part.strip()) else part.strip()
                       for part in command.split("&&"))


def scratch(tmp_path: Path) -> dict[str, str]:
    for name in ("recipes", "tools"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("MDREG_CACHE", str(REPO / ".pytest_cache" / "mdreg"))
    return env


def run_block(block: Block, cwd: Path, env: dict) -> None:
    marker = block.marker
    where = f"{block.doc.relative_to(REPO)}:{block.line}"
    if marker.startswith("skip"):
        assert marker[4:].strip(), f"{where}: a skipped block must say why (<!-- test: skip REASON -->)"
        return
    if marker.startswith("file "):
        target = cwd / marker[5:].strip()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text + "\n")
        return
    expect = int(marker.split()[1]) if marker.startswith("exit ") else 0
    args = "" if marker.startswith("exit ") else marker
    if block.lang == "python":
        script = cwd / f"snippet_{block.line}.py"
        script.write_text(block.text)
        runs = [[sys.executable, str(script)]]
    else:
        runs = [["bash", "-c", with_args(c, args) if args else c] for c in commands(block)]
    for i, argv in enumerate(runs):
        out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        wanted = expect if i == len(runs) - 1 else 0
        assert out.returncode == wanted, (f"{where}: {argv[-1]!r} exited {out.returncode}, not {wanted}\n"
                                          f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if any(b.lang in ("bash", "python") for b in blocks(d))],
                         ids=lambda d: d.name)
def test_the_commands_and_snippets_of_a_document_run(doc, tmp_path):
    env = scratch(tmp_path)
    for block in blocks(doc):
        if block.lang in ("bash", "sh", "python"):
            run_block(block, tmp_path, env)


NAME = re.compile(r"`(mdreg(?:\.[A-Za-z_]\w*)+)`")
PATH = re.compile(r"(?<![\w/.-])((?:mdreg|tools|recipes|tests|docs)/[\w/.*-]*\w)")


def resolves(name: str) -> bool:
    """``name`` imports as a module or an attribute of one (as a recipe's dotted ``_target_`` does)."""
    try:
        import_object(name)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_name_and_path_a_document_mentions_exists(doc):
    text = doc.read_text()
    missing = sorted({n for n in NAME.findall(text) if not resolves(n)})
    paths = {p.rstrip(".") for p in PATH.findall(text)}
    missing += sorted(p for p in paths if not (REPO / p).exists() and "<" not in p and "*" not in p)
    assert not missing, f"{doc.relative_to(REPO)} names what does not exist: {', '.join(missing)}"


def test_the_conventions_hold_for_a_made_up_document(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("intro\n<!-- test: train.max_steps=2 -->\n```bash\npython tools/launch.py r.py \\\n  --dry-run  # c\n"
                   "echo 'a # b'\n```\n```text\nnot run\n```\n")
    (bash, text) = blocks(doc)
    assert bash.marker == "train.max_steps=2" and text.lang == "text"
    assert commands(bash) == ["python tools/launch.py r.py --dry-run", "echo 'a # b'"]
    assert with_args(commands(bash)[0], bash.marker) == "python tools/launch.py r.py --dry-run train.max_steps=2"
    assert with_args("cd x && python tools/sample.py R", "--num 2") == "cd x && python tools/sample.py R --num 2"
    assert not resolves("mdreg.engine.nothing_here") and resolves("mdreg.engine.trainer.Trainer.fit")
