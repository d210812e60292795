import hashlib
import json
from pathlib import Path

import pytest

from activeit.errors import TaskFormatError
from activeit.tasks import (
    TaskLibrary,
    check_task_name,
    content_name,
    infer_kind,
    load_instruction_dataset,
    load_metadata,
    load_task_file,
    read_records,
    resolve_data_path,
    validate_directory,
)


def make_task(**overrides):
    task = {
        "Contributors": ["test"],
        "Categories": ["Sentiment Analysis"],
        "Definition": ["Classify the review as \"positive\" or \"negative\"."],
        "Positive Examples": [{"input": "Great film.", "output": "positive", "explanation": "praise"}],
        "Negative Examples": [],
        "Instances": [
            {"id": "t-1", "input": "I loved it", "output": ["positive"]},
            {"id": "t-2", "input": "Awful", "output": ["negative"]},
        ],
    }
    task.update(overrides)
    return task


def write_dir(root: Path, tasks: dict[str, object], splits: dict[str, list[str]] | None = None) -> Path:
    (root / "tasks").mkdir(parents=True)
    for name, data in tasks.items():
        path = root / "tasks" / f"{name}.json"
        if isinstance(data, bytes):
            path.write_bytes(data)
        elif isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_text(json.dumps(data), encoding="utf-8")
    for fname, names in (splits or {}).items():
        p = root / "splits" / "default" / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(n + "\n" for n in names))
    return root


def test_load_task_fields(tmp_path):
    write_dir(tmp_path, {"task001_sent": make_task()})
    task = TaskLibrary(tmp_path).load("task001_sent")
    assert task.definition.startswith("Classify")
    assert task.kind == "cls"
    assert task.category == "Sentiment Analysis"
    assert [i.id for i in task.instances] == ["t-1", "t-2"]
    assert task.instances[0].outputs == ("positive",)
    assert task.positive_examples[0].output == "positive"


def test_missing_ids_get_stable_ids(tmp_path):
    data = make_task(Instances=[{"input": "a", "output": ["positive"]}, {"input": "b", "output": ["negative"]}])
    write_dir(tmp_path, {"task002_noid": data})
    task = TaskLibrary(tmp_path).load("task002_noid")
    assert [i.id for i in task.instances] == ["task002_noid-0", "task002_noid-1"]


@pytest.mark.parametrize(
    "definition, outputs, kind",
    [
        ("Answer 'yes' or 'no'.", ["yes", "no", "Yes"], "cls"),
        ("Answer yes or no.", ["yes", "maybe"], "gen"),
        ("Return the character with the maximum ASCII value in [a - z].", ["x", "y", "u"], "gen"),
        ("Label obscene and non-obscene comments.", ["Obscene", "Non-obscene"], "cls"),
        ("Write a title.", [f"t{i}" for i in range(11)], "gen"),
        ("Indicate '1' if entailed, otherwise '0'.", ["0", "1"], "cls"),
    ],
)
def test_infer_kind(definition, outputs, kind):
    assert infer_kind(definition, outputs) == kind


def test_metadata_overrides_kind_and_category(tmp_path):
    write_dir(tmp_path / "d", {"task001_sent": make_task()})
    meta = tmp_path / "meta.tsv"
    meta.write_text("task\tkind\tcategories\ntask001_sent\tgen\tOther;Second\n")
    lib = TaskLibrary(tmp_path / "d", metadata=meta)
    assert lib.kind("task001_sent") == "gen"
    assert lib.category("task001_sent") == "Other"
    assert lib.load("task001_sent").categories == ["Other", "Second"]


def test_metadata_bad_kind(tmp_path):
    meta = tmp_path / "meta.tsv"
    meta.write_text("task\tkind\nx\tbinary\n")
    with pytest.raises(TaskFormatError, match="kind must be 'cls' or 'gen'"):
        load_metadata(meta)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"Definition": ["x"], "Instances": [', "invalid JSON at line 1"),
        (b'{"Definition": ["caf\xe9"], "Instances": []}', "not valid UTF-8"),
        ({"Instances": [{"id": "a", "input": "x", "output": ["y"]}]}, "missing required field 'Definition'"),
        ({"Definition": ["d"]}, "missing required field 'Instances'"),
        ({"Definition": ["d"], "Instances": {"a": 1}}, "'Instances' must be a list"),
        ({"Definition": 5, "Instances": [{"id": "a", "input": "x", "output": ["y"]}]}, "'Definition' must be"),
        ({"Definition": ["d"], "Instances": [{"id": "a", "input": "x", "output": []}]}, "empty output"),
        ({"Definition": ["d"], "Instances": [{"id": "a", "input": "x", "output": [""]}]}, "empty output"),
        ({"Definition": ["d"], "Instances": [{"id": "a", "input": "x", "output": "y"}]}, "'output' must be a list of strings"),
        ({"Definition": ["d"], "Instances": [{"id": "a", "input": 3, "output": ["y"]}]}, "'input' must be a string"),
        ({"Definition": ["d"], "Instances": [{"id": "a", "input": "x", "output": ["y"]},
                                             {"id": "a", "input": "z", "output": ["y"]}]}, "duplicate instance id 'a'"),
        ([1, 2], "top level must be a JSON object"),
    ],
)
def test_malformed_task_gives_one_line_naming_file(tmp_path, content, message):
    write_dir(tmp_path, {"task9_bad": content})
    with pytest.raises(TaskFormatError) as err:
        TaskLibrary(tmp_path).load("task9_bad")
    text = str(err.value)
    assert message in text
    assert "task9_bad.json" in text
    assert "\n" not in text


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "..", ".hidden", "", "x\\y", " padded"])
def test_unsafe_task_names_rejected(name):
    with pytest.raises(TaskFormatError):
        check_task_name(name)


def test_library_rejects_escaping_names(tmp_path):
    write_dir(tmp_path, {"task001_sent": make_task()})
    lib = TaskLibrary(tmp_path)
    with pytest.raises(TaskFormatError, match="invalid task name"):
        lib.load("../tasks/task001_sent")
    with pytest.raises(TaskFormatError, match="not found"):
        lib.load("task404")


def test_validate_reports_every_problem(tmp_path):
    write_dir(
        tmp_path,
        {
            "task001_ok": make_task(),
            "task002_nodef": {"Instances": [{"id": "a", "input": "x", "output": ["y"]}]},
            "task003_badjson": "{nope",
            "task004_dup": make_task(Instances=[{"id": "a", "input": "x", "output": ["y"]},
                                                {"id": "a", "input": "x", "output": []}]),
        },
        splits={"train_tasks.txt": ["task001_ok", "task404_missing"], "test_tasks.txt": ["../escape"]},
    )
    problems = [str(p) for p in validate_directory(tmp_path)]
    joined = "\n".join(problems)
    assert "task002_nodef.json: missing required field 'Definition'" in joined
    assert "task003_badjson.json: invalid JSON" in joined
    assert "duplicate instance id 'a'" in joined and "empty output" in joined
    assert "train_tasks.txt:2: task 'task404_missing' has no task file" in joined
    assert "test_tasks.txt:1: invalid task name" in joined
    assert not any("task001_ok" in p for p in problems)
    assert len(problems) == 6


def test_validate_clean_directory(tmp_path):
    write_dir(tmp_path, {"task001_ok": make_task()}, splits={"train_tasks.txt": ["task001_ok"]})
    assert validate_directory(tmp_path) == []


def test_ni_mini_loads_and_validates(ni_mini):
    assert validate_directory(ni_mini) == []
    lib = TaskLibrary(ni_mini)
    assert len(lib) == 25
    index = {}
    for line in (ni_mini / "index.tsv").read_text().splitlines()[1:]:
        cols = line.split("\t")
        index[cols[0]] = (cols[3], int(cols[4]), cols[2].split(";")[0])
    for summary in lib.summaries():
        kind, n, category = index[summary.name]
        assert (summary.kind, summary.n_instances, summary.category) == (kind, n, category), summary.name
    no_ids = lib.load("task1289_trec_classification")
    assert no_ids.instances[0].id == "task1289_trec_classification-0"


def test_instruction_dataset_jsonl(tmp_path):
    path = tmp_path / "alpaca.jsonl"
    rows = [
        {"instruction": "Give the opposite of the word.", "input": "hot", "output": "cold"},
        {"instruction": "Is the sentence positive or negative?", "input": "Great!", "output": "positive"},
        {"instruction": "Write a haiku about the sea.", "input": "", "output": "Waves..."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tasks = load_instruction_dataset(path)
    names = [content_name("alpaca", r["instruction"], r["input"], r["output"]) for r in rows]
    assert [t.name for t in tasks] == names
    assert names[0] == "alpaca-" + hashlib.sha1(json.dumps(["Give the opposite of the word.", "hot", "cold"])
                                                .encode()).hexdigest()[:10]
    assert tasks[0].definition == "Give the opposite of the word."
    assert tasks[0].instances[0].input == "hot" and tasks[0].instances[0].outputs == ("cold",)
    assert tasks[0].instances[0].id == names[0] + "-0"
    assert tasks[1].kind == "cls" and tasks[0].kind == "gen"
    lib = TaskLibrary(path)
    assert lib.names() == sorted(names)
    assert lib.load(names[2]).instances[0].outputs == ("Waves...",)


def test_instruction_names_do_not_depend_on_record_order(tmp_path):
    rows = [{"instruction": f"Say {w}.", "input": "", "output": w} for w in ("a", "b", "c")]
    rows += [{"instruction": "Say a.", "input": "", "output": "a", "category": cat} for cat in ("x", "y")]
    forward, backward = tmp_path / "f" / "pool.jsonl", tmp_path / "b" / "pool.jsonl"
    for path, order in ((forward, rows), (backward, rows[::-1])):
        path.parent.mkdir()
        path.write_text("".join(json.dumps(r) + "\n" for r in order))
    ours = {t.name: (t.definition, tuple(t.categories)) for t in load_instruction_dataset(forward)}
    assert ours == {t.name: (t.definition, tuple(t.categories)) for t in load_instruction_dataset(backward)}
    base = content_name("pool", "Say a.", "", "a")
    assert {n for n in ours if n.startswith(base)} == {base, base + "-2", base + "-3"}


def test_instruction_names_from_id_field(tmp_path):
    path = tmp_path / "ids.jsonl"
    rows = [{"id": "seed_task_0", "instruction": "Say hi.", "output": "hi"},
            {"id": 7, "instruction": "Say yo.", "output": "yo"},
            {"id": "a/b ../c", "instruction": "Say no.", "output": "no"},
            {"instruction": "Say ok.", "output": "ok"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    names = [t.name for t in load_instruction_dataset(path)]
    assert names[:3] == ["seed_task_0", "7", "a_b___c"]
    assert names[3] == content_name("ids", "Say ok.", "", "ok")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + [{"id": "seed_task_0", "instruction": "x", "output": "y"}]))
    with pytest.raises(TaskFormatError, match=r"record 0 and record 4: both are named 'seed_task_0'"):
        load_instruction_dataset(path)
    path.write_text(json.dumps({"id": [1], "instruction": "x", "output": "y"}) + "\n")
    with pytest.raises(TaskFormatError, match="record 0: 'id' must be a string or an integer"):
        load_instruction_dataset(path)
    path.write_text(json.dumps({"id": " ", "instruction": "x", "output": "y"}) + "\n")
    with pytest.raises(TaskFormatError, match="record 0: empty task name"):
        load_instruction_dataset(path)


def test_instruction_dataset_json_list_and_errors(tmp_path):
    path = tmp_path / "self_instruct.json"
    path.write_text(json.dumps([{"instruction": "Say hi.", "output": "hi"}]))
    assert load_instruction_dataset(path)[0].instances[0].input == ""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\n{"instruction": "x"}\n')
    with pytest.raises(TaskFormatError, match="record 1: missing or non-string 'output'"):
        load_instruction_dataset(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "x", "output": "y"}\n{oops\n')
    with pytest.raises(TaskFormatError, match="broken.jsonl:2: invalid JSON"):
        load_instruction_dataset(broken)


def test_read_records_by_suffix_and_content(tmp_path):
    rows = [{"a": 1}, {"a": 2}]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "r.json").write_text(json.dumps(rows, indent=1))
    (tmp_path / "list.txt").write_text("  " + json.dumps(rows))
    (tmp_path / "lines.txt").write_text("\n".join(json.dumps(r) for r in rows))
    for name in ("r.jsonl", "r.json", "list.txt", "lines.txt"):
        assert read_records(tmp_path / name) == rows, name
    (tmp_path / "obj.json").write_text('{"a": 1}')
    with pytest.raises(TaskFormatError, match="must be a list"):
        read_records(tmp_path / "obj.json")
    (tmp_path / "bad.json").write_text("[1,")
    with pytest.raises(TaskFormatError, match="bad.json: invalid JSON at line 1"):
        read_records(tmp_path / "bad.json")
    (tmp_path / "latin.jsonl").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(TaskFormatError, match="not valid UTF-8"):
        read_records(tmp_path / "latin.jsonl")
    with pytest.raises(TaskFormatError, match="file not found"):
        read_records(tmp_path / "absent.jsonl")


def test_load_task_file_directly(ni_mini):
    task = load_task_file(ni_mini / "tasks" / "task363_sst2_polarity_classification.json")
    assert task.name == "task363_sst2_polarity_classification"
    assert task.kind == "cls"


def test_reference_task_metadata_json(tmp_path):
    """The reference's task_metadata.json as it is: cls iff DefHasLabel == ExactMentioned."""
    import json

    write_dir(tmp_path / "d", {"task001_sent": make_task(), "task002_gen": make_task()})
    meta = tmp_path / "task_metadata.json"
    meta.write_text(json.dumps({
        "task001_sent.json": {"DefHasLabel": "NotMentioned", "Categories": ["Sentiment Analysis"], "Domains": ["x"]},
        "task002_gen.json": {"DefHasLabel": "ExactMentioned", "Categories": ["Question Answering"]},
    }))
    lib = TaskLibrary(tmp_path / "d", metadata=meta)
    assert lib.kind("task001_sent") == "gen" and lib.kind("task002_gen") == "cls"
    assert lib.category("task002_gen") == "Question Answering"
    assert lib.load("task002_gen").kind == "cls"
    assert str(meta) in lib.kinds_source


def test_task_missing_from_metadata_is_an_error(tmp_path):
    write_dir(tmp_path / "d", {"task001_sent": make_task(), "task002_other": make_task()})
    meta = tmp_path / "meta.tsv"
    meta.write_text("task\tkind\ntask001_sent\tgen\n")
    lib = TaskLibrary(tmp_path / "d", metadata=meta)
    assert lib.kind("task001_sent") == "gen"
    for call in (lib.kind, lib.summary, lib.load):
        with pytest.raises(TaskFormatError, match=r"meta.tsv: task 'task002_other' is not in the metadata file"):
            call("task002_other")
    assert "inferred" in TaskLibrary(tmp_path / "d").kinds_source


def test_metadata_lfs_pointer_is_named(tmp_path):
    meta = tmp_path / "task_metadata.json"
    meta.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:2e55\nsize 123\n")
    with pytest.raises(TaskFormatError, match="Git LFS pointer.*git lfs pull"):
        load_metadata(meta)


def test_bundled_names_a_data_set_or_one_of_its_files():
    assert resolve_data_path("bundled:demo").is_dir()
    assert resolve_data_path("bundled:instructions/pool.jsonl").is_file()
    for bad in ("bundled:instructions/../demo", "bundled:", "bundled:demo//tasks"):
        with pytest.raises(TaskFormatError, match="not a bundled data set name"):
            resolve_data_path(bad)
    with pytest.raises(TaskFormatError, match="bundled: demo, instructions"):
        resolve_data_path("bundled:nope")
