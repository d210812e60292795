"""Tasks and their loaders: Super-NaturalInstructions directories and instruction datasets.

A `TaskLibrary` indexes task files by name and reads a task's instances only when asked, so a
3 GB NI checkout can be listed without holding it in memory. Every malformed input gives a
`TaskFormatError` whose one-line message names the file and the problem.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from activeit.atomic import jsonl_rows, read_utf8, write_json
from activeit.cache import cache_root
from activeit.errors import TaskFormatError

Kind = Literal["cls", "gen"]
KINDS: tuple[Kind, ...] = ("cls", "gen")
MAX_LABELS = 10
UNCATEGORIZED = "Uncategorized"
BUNDLED_PREFIX = "bundled:"


@dataclass(frozen=True)
class Example:
    """A demonstration shown in the prompt (NI `Positive Examples`)."""

    input: str
    output: str
    explanation: str = ""


@dataclass(frozen=True)
class Instance:
    id: str
    input: str
    outputs: tuple[str, ...]


@dataclass
class Task:
    name: str
    definition: str
    positive_examples: list[Example]
    negative_examples: list[Example]
    categories: list[str]
    instances: list[Instance]
    kind: Kind
    path: Path | None = None

    @property
    def category(self) -> str:
        return self.categories[0] if self.categories else UNCATEGORIZED

    def summary(self) -> TaskSummary:
        return TaskSummary(self.name, self.kind, tuple(self.categories), len(self.instances), self.path)


@dataclass(frozen=True)
class TaskSummary:
    """What listing and pool bookkeeping need, without the instances."""

    name: str
    kind: Kind
    categories: tuple[str, ...]
    n_instances: int
    path: Path | None = None

    @property
    def category(self) -> str:
        return self.categories[0] if self.categories else UNCATEGORIZED


@dataclass(frozen=True)
class Problem:
    """One validation finding, printed as ``path: message``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# --------------------------------------------------------------------------- names and kinds


def check_task_name(name: str, where: str = "task name") -> str:
    """Reject names that could escape the data directory or are not plain file stems."""
    if not isinstance(name, str) or not name.strip():
        raise TaskFormatError(f"{where}: empty task name")
    bad = ("/" in name or "\\" in name or ".." in name or name.startswith(".")
           or "\x00" in name or name != name.strip())
    if bad:
        raise TaskFormatError(f"{where}: invalid task name {name!r} (no '/', '\\', '..', leading '.' or spaces)")
    return name


def _names(text: str, label: str) -> bool:
    """`label` occurs in `text` as a whole word (so a label 'x' is not found inside 'index')."""
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(label) + r"(?![A-Za-z0-9_])", text) is not None


def infer_kind(definition: str, first_outputs: Iterable[str]) -> Kind:
    """`cls` when every instance's answer is one of <= 10 labels that the definition names.

    Case-insensitive, whole-word match: single-letter answers ('x', 'y') do not count as
    named just because the definition contains those letters.
    """
    labels = {o.strip().lower() for o in first_outputs}
    if not labels or len(labels) > MAX_LABELS:
        return "gen"
    text = definition.lower()
    return "cls" if all(label and _names(text, label) for label in labels) else "gen"


# --------------------------------------------------------------------------- parsing one task


def _problems_of_examples(value: Any, key: str) -> list[str]:
    if not isinstance(value, list):
        return [f"'{key}' must be a list, got {type(value).__name__}"]
    problems = []
    for i, ex in enumerate(value):
        if not isinstance(ex, dict):
            problems.append(f"'{key}'[{i}] must be an object, got {type(ex).__name__}")
            continue
        for sub in ("input", "output"):
            if not isinstance(ex.get(sub), str):
                problems.append(f"'{key}'[{i}].{sub} must be a string")
    return problems


def _problems_of_instances(value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"'Instances' must be a list, got {type(value).__name__}"]
    if not value:
        return ["'Instances' is empty"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, inst in enumerate(value):
        if not isinstance(inst, dict):
            problems.append(f"instance {i} must be an object, got {type(inst).__name__}")
            continue
        label = f"instance {i}" + (f" (id {inst['id']!r})" if isinstance(inst.get("id"), str) else "")
        if "id" in inst and not isinstance(inst["id"], str):
            problems.append(f"{label}: 'id' must be a string")
        elif isinstance(inst.get("id"), str):
            if inst["id"] in seen:
                problems.append(f"duplicate instance id {inst['id']!r} (instances {seen[inst['id']]} and {i})")
            else:
                seen[inst["id"]] = i
        if not isinstance(inst.get("input"), str):
            problems.append(f"{label}: 'input' must be a string")
        out = inst.get("output")
        if not isinstance(out, list) or not all(isinstance(o, str) for o in out):
            problems.append(f"{label}: 'output' must be a list of strings")
        elif not out or not any(o.strip() for o in out):
            problems.append(f"{label}: empty output")
    return problems


def task_problems(data: Any) -> list[str]:
    """Every problem with a decoded NI task object (empty list: the task is valid)."""
    if not isinstance(data, dict):
        return [f"top level must be a JSON object, got {type(data).__name__}"]
    problems = []
    definition = data.get("Definition")
    if "Definition" not in data:
        problems.append("missing required field 'Definition'")
    elif isinstance(definition, list):
        if not definition or not isinstance(definition[0], str):
            problems.append("'Definition' must be a non-empty list of strings")
        elif not definition[0].strip():
            problems.append("'Definition' is empty")
    elif not isinstance(definition, str) or not definition.strip():
        problems.append("'Definition' must be a non-empty string or list of strings")
    if "Instances" not in data:
        problems.append("missing required field 'Instances'")
    else:
        problems += _problems_of_instances(data["Instances"])
    for key in ("Positive Examples", "Negative Examples"):
        if key in data:
            problems += _problems_of_examples(data[key], key)
    cats = data.get("Categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        problems.append("'Categories' must be a list of strings")
    return problems


def decode_task_file(path: Path) -> Any:
    """Read and JSON-decode a task file; a one-line `TaskFormatError` on failure."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TaskFormatError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TaskFormatError(f"{path}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskFormatError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def _examples(raw: list[dict]) -> list[Example]:
    return [Example(e["input"], e["output"], e.get("explanation", "") or "") for e in raw]


def task_from_dict(name: str, data: Any, path: Path | None = None,
                   kind: Kind | None = None, categories: list[str] | None = None) -> Task:
    """Build a `Task` from a decoded NI object; missing instance ids become `<task>-<index>`."""
    check_task_name(name, str(path) if path else "task name")
    problems = task_problems(data)
    if problems:
        raise TaskFormatError(f"{path or name}: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    definition = data["Definition"][0] if isinstance(data["Definition"], list) else data["Definition"]
    instances = []
    ids = {inst["id"] for inst in data["Instances"] if "id" in inst}
    for i, inst in enumerate(data["Instances"]):
        iid = inst.get("id")
        if iid is None:
            iid = f"{name}-{i}"
            if iid in ids:
                raise TaskFormatError(f"{path or name}: generated id {iid!r} for instance {i} clashes with an existing id")
        instances.append(Instance(iid, inst["input"], tuple(inst["output"])))
    cats = categories if categories is not None else list(data.get("Categories", []))
    if kind is None:
        kind = infer_kind(definition, (inst.outputs[0] for inst in instances))
    return Task(
        name=name,
        definition=definition,
        positive_examples=_examples(data.get("Positive Examples", [])),
        negative_examples=_examples(data.get("Negative Examples", [])),
        categories=cats,
        instances=instances,
        kind=kind,
        path=path,
    )


def summarize_task_file(path: Path, kind: Kind | None = None, categories: list[str] | None = None) -> TaskSummary:
    """Kind, categories and instance count without building the task (listing a big pool).

    Only what the summary reads is checked; anything odd falls back to full validation so
    the error message is the same as `load_task_file`'s.
    """
    data = decode_task_file(path)
    try:
        definition = data["Definition"][0] if isinstance(data["Definition"], list) else data["Definition"]
        instances = data["Instances"]
        first = [inst["output"][0] for inst in instances]
        cats = list(data.get("Categories", [])) if categories is None else categories
        ok = (isinstance(definition, str) and definition.strip() and isinstance(instances, list) and instances
              and all(isinstance(o, str) for o in first) and all(isinstance(c, str) for c in cats))
    except (KeyError, IndexError, TypeError):
        ok = False
    if not ok:
        return load_task_file(path, kind=kind, categories=categories).summary()
    return TaskSummary(path.stem, kind or infer_kind(definition, first), tuple(cats), len(instances), path)


def load_task_file(path: str | os.PathLike, **overrides: Any) -> Task:
    path = Path(path)
    return task_from_dict(path.stem, decode_task_file(path), path, **overrides)


# --------------------------------------------------------------------------- instruction datasets


def read_records(path: str | os.PathLike) -> list[Any]:
    """Records of a JSONL file or of a JSON list (`.json`, or any other suffix whose text starts with `[`).

    Instruction datasets and judge questions come both ways; one reader keeps their errors alike.
    """

    path = Path(path)
    text = read_utf8(path, TaskFormatError)
    if path.suffix == ".jsonl" or (path.suffix != ".json" and not text.lstrip().startswith("[")):
        return jsonl_rows(text, path, TaskFormatError)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaskFormatError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(records, list):
        raise TaskFormatError(f"{path}: a JSON file of records must be a list")
    return records


NAME_HASH_CHARS = 10


def _record_id(value: Any, where: str) -> str:
    """A record's `id` as a task name: path separators, NULs and whitespace become `_`, leading dots go."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TaskFormatError(f"{where}: 'id' must be a string or an integer, got {type(value).__name__}")
    text = re.sub(r"[/\\\s\x00]+", "_", str(value).strip()).replace("..", "_").lstrip(".")
    return check_task_name(text, where)


def content_name(prefix: str, instruction: str, inp: str, output: str) -> str:
    """`<prefix>-<first 10 hex of sha1 of the record's text>`: the same record gets the same name
    wherever it stands in the file."""
    digest = hashlib.sha1(json.dumps([instruction, inp, output], ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:NAME_HASH_CHARS]}"


def load_instruction_dataset(path: str | os.PathLike, prefix: str | None = None) -> list[Task]:
    """Alpaca / Self-Instruct records `{instruction, input, output}` as one-instance tasks.

    The instruction becomes the definition, so prompt uncertainty perturbs it like an NI
    definition. Names do not depend on the order of the records, so a re-ordered or filtered
    file keeps its split files valid: a record's `id` (sanitised) when it has one, else
    `<prefix>-<sha1 of instruction, input and output>` (prefix defaults to the file stem);
    repeats of a record get `-2`, `-3`, ... in the order of their full JSON text.
    """
    path = Path(path)
    prefix = prefix or path.stem
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for i, rec in enumerate(read_records(path)):
        where = f"{path}: record {i}"
        if not isinstance(rec, dict):
            raise TaskFormatError(f"{where}: must be an object with 'instruction', 'input', 'output'")
        for key in ("instruction", "output"):
            if not isinstance(rec.get(key), str):
                raise TaskFormatError(f"{where}: missing or non-string '{key}'")
        if not rec["instruction"].strip():
            raise TaskFormatError(f"{where}: empty 'instruction'")
        if not rec["output"].strip():
            raise TaskFormatError(f"{where}: empty output")
        inp = rec.get("input", "") or ""
        if not isinstance(inp, str):
            raise TaskFormatError(f"{where}: 'input' must be a string")
        if rec.get("id") is not None:
            name = _record_id(rec["id"], where)
        else:
            name = check_task_name(content_name(prefix, rec["instruction"], inp, rec["output"]), where)
        rows.append((name, where, dict(rec, input=inp)))
    if not rows:
        raise TaskFormatError(f"{path}: no records")
    tasks = []
    for name, where, rec in _unique_names(rows):
        cat = rec.get("category")
        tasks.append(Task(
            name=name,
            definition=rec["instruction"],
            positive_examples=[],
            negative_examples=[],
            categories=[cat] if isinstance(cat, str) and cat else [],
            instances=[Instance(f"{name}-0", rec["input"], (rec["output"],))],
            kind=infer_kind(rec["instruction"], [rec["output"]]),
            path=path,
        ))
    return tasks


def _unique_names(rows: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """Repeated content names get `-2`, `-3`, ...; a repeated `id` is an error naming both records."""
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    out = []
    taken = set(groups)
    for name, group in groups.items():
        with_id = [row for row in group if row[2].get("id") is not None]
        if len(group) > 1 and with_id:
            other = next(row for row in group if row is not with_id[0])
            raise TaskFormatError(f"{with_id[0][1]} and {other[1].rsplit(': ', 1)[-1]}: both are named {name!r} "
                                  f"(the 'id' field, or the content of a record without one); task names must be unique")
        group = sorted(group, key=lambda row: json.dumps(row[2], sort_keys=True, ensure_ascii=False))
        for n, (_, where, rec) in enumerate(group, 1):
            unique = name if n == 1 else f"{name}-{n}"
            if n > 1 and unique in taken:
                raise TaskFormatError(f"{where}: the name {unique!r} for a repeated record is taken by another record")
            out.append((unique, where, rec))
    return out


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class TaskMetadata:
    kind: Kind | None = None
    categories: tuple[str, ...] | None = None


REFERENCE_CLS_LABEL = "ExactMentioned"


def _reference_row(key: str, value: dict[str, Any]) -> dict[str, Any]:
    """One entry of the reference's `task_metadata.json`: cls iff `DefHasLabel` is `ExactMentioned`."""
    row: dict[str, Any] = {"task": key.removesuffix(".json")}
    if "DefHasLabel" in value:
        row["kind"] = "cls" if value["DefHasLabel"] == REFERENCE_CLS_LABEL else "gen"
    if "Categories" in value:
        row["categories"] = value["Categories"]
    return row


def load_metadata(path: str | os.PathLike) -> dict[str, TaskMetadata]:
    """Per-task kind/category overrides.

    Accepts a TSV with a `task` column and `kind` and/or `categories` (`;`-joined) columns, a
    JSON object `{task: {kind, categories}}`, or the reference's `task_metadata.json` as it is
    (`{"task123_x.json": {"DefHasLabel": ..., "Categories": [...]}}`): the paper's cls/gen split
    is that human annotation, not a guess from the text.
    """
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"{path}: metadata file not found")
    with open(path, "rb") as f:
        if f.read(40).startswith(b"version https://git-lfs"):
            raise TaskFormatError(f"{path}: a Git LFS pointer, not the file; run `git lfs pull` in its checkout")
    out: dict[str, TaskMetadata] = {}
    if path.suffix == ".json":
        data = decode_task_file(path)
        if not isinstance(data, dict):
            raise TaskFormatError(f"{path}: metadata must be a JSON object keyed by task name")
        rows = []
        for key, value in data.items():
            if isinstance(value, dict) and ("DefHasLabel" in value or "Categories" in value):
                rows.append(_reference_row(key, value))
            elif isinstance(value, dict):
                rows.append(dict(value, task=key.removesuffix(".json")))
            else:
                rows.append({"task": key.removesuffix(".json"), "kind": value})
    else:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows and "task" not in rows[0]:
            raise TaskFormatError(f"{path}: metadata TSV needs a 'task' column")
    for lineno, row in enumerate(rows, 2):
        name = check_task_name(str(row.get("task", "")), f"{path}: row {lineno}")
        kind = row.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise TaskFormatError(f"{path}: row {lineno}: kind must be 'cls' or 'gen', got {kind!r}")
        cats = row.get("categories")
        if isinstance(cats, str):
            cats = tuple(c.strip() for c in cats.split(";") if c.strip())
        elif isinstance(cats, list):
            cats = tuple(str(c) for c in cats)
        out[name] = TaskMetadata(kind, cats or None)
    return out


# --------------------------------------------------------------------------- the library


class _SummaryCache:
    """`~/.cache/activeit/summaries/<hash of tasks dir>.json`: listing a 3 GB pool twice reads it once.

    Best effort: an unreadable or unwritable cache only costs time.
    """

    def __init__(self, path: Path, entries: dict[str, Any]):
        self.path, self.entries, self.dirty = path, entries, False

    @classmethod
    def open(cls, tasks_dir: Path) -> _SummaryCache:
        digest = hashlib.sha256(str(tasks_dir.resolve()).encode()).hexdigest()[:16]
        path = cache_root() / "summaries" / f"{digest}.json"
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {})

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.entries[key] = value
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return

        try:
            write_json(self.path, self.entries)
            self.dirty = False
        except OSError:
            pass


def bundled_path(name: str) -> Path:
    """A data set shipped inside the package (`bundled:demo`), or one of its files
    (`bundled:instructions/pool.jsonl`)."""
    parts = name.split("/")
    base = Path(str(files("activeit") / "data"))
    if not name or any(p in ("", ".", "..") for p in parts):
        raise TaskFormatError(f"{BUNDLED_PREFIX}{name}: not a bundled data set name")
    root = base.joinpath(*parts)
    if not root.exists() or not root.resolve().is_relative_to(base.resolve()):
        known = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
        raise TaskFormatError(f"{BUNDLED_PREFIX}{name}: no bundled data of that name (bundled: {', '.join(known)})")
    return root


def resolve_data_path(path: str | os.PathLike) -> Path:
    text = str(path)
    if text.startswith(BUNDLED_PREFIX):
        return bundled_path(text[len(BUNDLED_PREFIX):])
    return Path(text).expanduser()


class TaskLibrary:
    """All tasks of one data source, by name; instances are read only when a task is loaded.

    `root` is an NI checkout (`tasks/*.json` + `splits/`), a flat directory of task JSON
    files, or a `.jsonl`/`.json` instruction dataset (held in memory: those are small per task).
    """

    def __init__(self, root: str | os.PathLike, metadata: str | os.PathLike | None = None, cache_size: int = 8):
        self.root = resolve_data_path(root)
        self.metadata_path = Path(metadata) if metadata else None
        self.metadata = load_metadata(metadata) if metadata else {}
        self._summaries: dict[str, TaskSummary] = {}
        self._cache: OrderedDict[str, Task] = OrderedDict()
        self._cache_size = cache_size
        self._memory: dict[str, Task] = {}
        self._disk_cache: _SummaryCache | None = None
        if self.root.is_file():
            for task in load_instruction_dataset(self.root):
                self._memory[task.name] = task
            self.tasks_dir = self.root.parent
            self._files: dict[str, Path] = {}
        elif self.root.is_dir():
            self.tasks_dir = self.root / "tasks" if (self.root / "tasks").is_dir() else self.root
            self._files = {p.stem: p for p in sorted(self.tasks_dir.glob("*.json")) if not p.name.startswith(".")}
            if not self._files:
                raise TaskFormatError(f"{self.root}: no task files (*.json) found in {self.tasks_dir}")
        else:
            raise TaskFormatError(f"{self.root}: data path not found")

    def __len__(self) -> int:
        return len(self._files) + len(self._memory)

    def __contains__(self, name: object) -> bool:
        return name in self._files or name in self._memory

    def names(self) -> list[str]:
        return sorted([*self._files, *self._memory])

    def require(self, name: str, where: str = "task") -> str:
        """Check a task name from a user or split file: safe, and present in this library."""
        check_task_name(name, where)
        if name not in self:
            raise TaskFormatError(f"{where}: task {name!r} not found in {self.tasks_dir}")
        return name

    def path(self, name: str) -> Path:
        self.require(name)
        path = self._files[name]
        if not path.resolve().is_relative_to(self.tasks_dir.resolve()):
            raise TaskFormatError(f"{path}: resolves outside the data directory {self.tasks_dir}")
        return path

    @property
    def kinds_source(self) -> str:
        """Where task kinds come from, for `activeit validate`."""
        if self.metadata_path is None:
            return "inferred from each task's definition and outputs (no data.metadata)"
        return f"metadata file {self.metadata_path}"

    def _meta(self, name: str) -> TaskMetadata | None:
        """A given metadata file must cover every task used: a silent fallback to inference would
        change the cls/gen sub-pools without a word."""
        if self.metadata_path is None:
            return None
        meta = self.metadata.get(name)
        if meta is None:
            raise TaskFormatError(f"{self.metadata_path}: task {name!r} is not in the metadata file "
                                  f"(it gives the task kinds; add the task or drop data.metadata)")
        return meta

    def _overrides(self, name: str) -> dict[str, Any]:
        meta = self._meta(name)
        if meta is None:
            return {}
        out: dict[str, Any] = {}
        if meta.kind is not None:
            out["kind"] = meta.kind
        if meta.categories is not None:
            out["categories"] = list(meta.categories)
        return out

    def load(self, name: str) -> Task:
        """The full task (instances included); a few recent ones are kept in memory."""
        if name in self._memory:
            return self._memory[name]
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        task = load_task_file(self.path(name), **self._overrides(name))
        self._summaries.setdefault(name, task.summary())
        self._cache[name] = task
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return task

    def summary(self, name: str) -> TaskSummary:
        if name not in self._summaries:
            if name in self._memory:
                self._summaries[name] = self._memory[name].summary()
            else:
                self._summaries[name] = self._cached_summary(name)
        return self._summaries[name]

    def _cached_summary(self, name: str) -> TaskSummary:
        """Summaries persist in a small on-disk cache keyed by file path, size and mtime."""
        path = self.path(name)
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self._overrides(name)}"
        if self._disk_cache is None:
            self._disk_cache = _SummaryCache.open(self.tasks_dir)
        hit = self._disk_cache.get(key)
        if hit is not None:
            return TaskSummary(name, hit["kind"], tuple(hit["categories"]), hit["n_instances"], path)
        summary = summarize_task_file(path, **self._overrides(name))
        self._disk_cache.put(key, {"kind": summary.kind, "categories": list(summary.categories),
                                   "n_instances": summary.n_instances})
        return summary

    def flush(self) -> None:
        """Write newly computed summaries to the on-disk cache."""
        if self._disk_cache is not None:
            self._disk_cache.save()

    def summaries(self, names: Iterable[str] | None = None) -> Iterator[TaskSummary]:
        """Summaries one task at a time: peak memory is one task file, not the pool."""
        for i, name in enumerate(self.names() if names is None else names, 1):
            yield self.summary(name)
            if i % 200 == 0:
                self.flush()
        self.flush()

    def kind(self, name: str) -> Kind:
        meta = self._meta(name) if name not in self._memory else None
        if meta is not None and meta.kind is not None:
            return meta.kind
        return self.summary(name).kind

    def category(self, name: str) -> str:
        return self.summary(name).category


# --------------------------------------------------------------------------- validation


def validate_directory(root: str | os.PathLike) -> list[Problem]:
    """Check every task file and split file under an NI-style directory; all problems, not the first."""
    root = resolve_data_path(root)
    if root.is_file():
        try:
            load_instruction_dataset(root)
        except TaskFormatError as e:
            return [Problem(str(root), str(e).removeprefix(f"{root}: "))]
        return []
    if not root.is_dir():
        return [Problem(str(root), "directory not found")]
    tasks_dir = root / "tasks" if (root / "tasks").is_dir() else root
    problems: list[Problem] = []
    names = set()
    files = sorted(p for p in tasks_dir.glob("*.json") if not p.name.startswith("."))
    if not files:
        problems.append(Problem(str(tasks_dir), "no task files (*.json)"))
    for path in files:
        names.add(path.stem)
        try:
            check_task_name(path.stem)
            data = decode_task_file(path)
        except TaskFormatError as e:
            problems.append(Problem(str(path), str(e).split(": ", 1)[-1]))
            continue
        problems += [Problem(str(path), msg) for msg in task_problems(data)]
    splits = root / "splits"
    if splits.is_dir():
        for split_file in sorted(splits.rglob("*_tasks.txt")):
            problems += _split_file_problems(split_file, names)
    return problems


def _split_file_problems(path: Path, names: set[str]) -> list[Problem]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return [Problem(str(path), "not valid UTF-8")]
    problems = []
    for lineno, line in enumerate(lines, 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        try:
            check_task_name(name)
        except TaskFormatError as e:
            problems.append(Problem(f"{path}:{lineno}", str(e).split(": ", 1)[-1]))
            continue
        if name not in names:
            problems.append(Problem(f"{path}:{lineno}", f"task {name!r} has no task file"))
    return problems
