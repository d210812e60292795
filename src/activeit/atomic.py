"""Atomic file writes: every file a run writes appears whole or not at all.

Writes go to a temp file in the same directory, are fsynced, then renamed over the target.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from fnmatch import fnmatchcase
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


CRASH_ENV = "ACTIVEIT_CRASH_AT"
_crash_context = ""


def set_crash_context(context: str) -> None:
    """Name the step now running, for `crashpoint` patterns (`<step key>:<event>`)."""
    global _crash_context
    _crash_context = context


def crashpoint(event: str) -> None:
    """SIGKILL this process if `$ACTIVEIT_CRASH_AT` matches `<context>:<event>`.

    Only the kill-and-resume tests set it: it proves a run killed at that exact point resumes.
    """
    spec = os.environ.get(CRASH_ENV)
    if spec and fnmatchcase(f"{_crash_context}:{event}", spec):
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temp file beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        crashpoint(f"write-{path.name}")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_lines(path: str | os.PathLike, lines: Iterable[str]) -> None:
    write_text(path, "".join(f"{line}\n" for line in lines))


def replace_dir(tmp_dir: str | os.PathLike, final_dir: str | os.PathLike) -> None:
    """Move a fully written temp directory into place, replacing any old one.

    A crash between the two renames leaves the old directory under ``<final>.old``;
    the final path is either absent or complete, never half written.
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = final_dir.with_name(final_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    if old.exists():
        shutil.rmtree(old)


def read_jsonl(path: str | os.PathLike, error: type[Exception] = ValueError) -> list[Any]:
    """Rows of a JSONL file; a missing file, bad UTF-8 or a bad line raises `error` with a one-line message."""
    return jsonl_rows(read_utf8(path, error), path, error)


def read_utf8(path: str | os.PathLike, error: type[Exception] = ValueError) -> str:
    """A file's text; a missing or unreadable file or bad UTF-8 raises `error` with a one-line message."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not valid UTF-8 (offset {e.start})") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None


def jsonl_rows(text: str, path: str | os.PathLike, error: type[Exception] = ValueError) -> list[Any]:
    """Rows of JSONL text read from `path` (named in errors); blank lines are skipped."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise error(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
    return rows
