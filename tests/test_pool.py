import pytest

from activeit.errors import TaskFormatError
from activeit.pool import PoolState, default_chunk, initial_pool, read_task_list
from activeit.tasks import TaskLibrary


def test_default_chunk_is_reference_rule():
    assert default_chunk(756) == 68
    assert default_chunk(5) == 1


def test_ni_split_draws_dev_and_init_train(ni_mini):
    lib = TaskLibrary(ni_mini)
    pool = initial_pool(lib, "default", seed=1, chunk=4)
    assert len(pool.train) == 4 and len(pool.dev) == 4
    assert len(pool.test) == 7
    assert len(pool.remain) == 18 - 8
    dev_kinds = [lib.kind(n) for n in pool.dev]
    assert dev_kinds.count("cls") == 2 and dev_kinds.count("gen") == 2
    assert pool == initial_pool(lib, "default", seed=1, chunk=4)
    assert pool != initial_pool(lib, "default", seed=2, chunk=4)


def test_ni_split_default_chunk_and_too_small(ni_mini):
    lib = TaskLibrary(ni_mini)
    pool = initial_pool(lib, "default", seed=0)
    assert len(pool.train) == 1 == len(pool.dev)
    with pytest.raises(TaskFormatError, match="lower rounds.chunk"):
        initial_pool(lib, "default", seed=0, chunk=9)


def test_reference_layout(tmp_path, ni_mini):
    lib = TaskLibrary(ni_mini)
    names = lib.names()
    init = tmp_path / "split" / "init"
    init.mkdir(parents=True)
    lists = {"train": names[:2], "dev": names[2:4], "test": names[4:6], "remain": names[6:], "excluded": []}
    for key, value in lists.items():
        (init / f"{key}_tasks.txt").write_text("".join(n + "\n" for n in value))
    pool = initial_pool(lib, tmp_path / "split", seed=0)
    assert pool.lists() == {k: tuple(v) for k, v in lists.items()}


def test_split_naming_missing_task(tmp_path, ni_mini):
    lib = TaskLibrary(ni_mini)
    bad = tmp_path / "train_tasks.txt"
    bad.write_text("task363_sst2_polarity_classification\ntask999_missing\n")
    with pytest.raises(TaskFormatError, match=r"train_tasks.txt:2: task 'task999_missing' not found"):
        read_task_list(bad, lib)
    bad.write_text("../../etc/passwd\n")
    with pytest.raises(TaskFormatError, match="invalid task name"):
        read_task_list(bad, lib)


def test_unknown_split(ni_mini):
    with pytest.raises(TaskFormatError, match="neither a directory nor a split"):
        initial_pool(TaskLibrary(ni_mini), "nosuchsplit", seed=0)


def test_pool_state_pick_and_disjoint(tmp_path):
    state = PoolState(train=("a",), dev=("d",), test=("t",), remain=("b", "c", "e"))
    after = state.pick(["c", "b"])
    assert after.train == ("a", "c", "b") and after.remain == ("e",)
    with pytest.raises(TaskFormatError, match="not in the remain pool"):
        state.pick(["d"])
    with pytest.raises(TaskFormatError, match="both the train and the remain"):
        PoolState(train=("a",), remain=("a",))
    after.save(tmp_path)
    assert PoolState.load(tmp_path) == after


REF = "TLAL_Exp0_all_10"


def _lines(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def test_reference_split_dev_test_told_apart_by_ni_test_list(ni_reference):
    from conftest import REFERENCE_SPLITS

    lib = TaskLibrary(ni_reference, metadata=ni_reference / "task_metadata.json")
    pool = initial_pool(lib, REFERENCE_SPLITS / REF, seed=0)
    sizes = {k: len(v) for k, v in pool.lists().items()}
    assert sizes == {"train": 68, "dev": 68, "test": 119, "remain": 620, "excluded": 738}
    assert list(pool.test) == _lines(REFERENCE_SPLITS / "default_dev" / "test_tasks.txt")
    assert list(pool.dev) == _lines(REFERENCE_SPLITS / REF / "init" / "dev_tasks.txt")[119:]
    kinds = [lib.kind(n) for n in pool.train]
    assert (kinds.count("cls"), kinds.count("gen")) == (24, 44)
    dev_kinds = [lib.kind(n) for n in pool.dev]
    assert (dev_kinds.count("cls"), dev_kinds.count("gen")) == (34, 34)


def test_reference_split_with_configured_test_list(ni_reference, tmp_path):
    from conftest import REFERENCE_SPLITS

    lib = TaskLibrary(ni_reference)
    own = tmp_path / "test.txt"
    own.write_text("".join(n + "\n" for n in _lines(REFERENCE_SPLITS / "default_dev" / "test_tasks.txt")[:100]))
    with pytest.raises(TaskFormatError, match="data.test_tasks .*file not found") as e:
        initial_pool(lib, REFERENCE_SPLITS / REF, seed=0, test_tasks=tmp_path / "missing.txt")
    assert "missing.txt" in str(e.value)
    pool = initial_pool(lib, REFERENCE_SPLITS / REF, seed=0, test_tasks=own)
    assert len(pool.test) == 100 and len(pool.dev) == 87


def test_overlap_without_official_list_is_an_error(ni_mini, tmp_path):
    import shutil

    (tmp_path / "data").mkdir()
    for path in sorted((ni_mini / "tasks").glob("*.json"))[:8]:
        shutil.copy(path, tmp_path / "data")
    lib = TaskLibrary(tmp_path / "data")
    names = lib.names()
    init = tmp_path / "split" / "init"
    init.mkdir(parents=True)
    lists = {"train": names[:2], "dev": names[2:5], "test": names[3:6], "remain": names[6:]}
    for key, value in lists.items():
        (init / f"{key}_tasks.txt").write_text("".join(n + "\n" for n in value))
    with pytest.raises(TaskFormatError, match=rf"{names[3]}.*both the dev and the test list.*data.test_tasks"):
        initial_pool(lib, tmp_path / "split", seed=0)
    (init / "dev_tasks.txt").write_text(names[2] + "\n")
    (init / "train_tasks.txt").write_text(names[0] + "\n" + names[6] + "\n")
    with pytest.raises(TaskFormatError, match=rf"{names[6]}.*both the train and the remain list"):
        initial_pool(lib, tmp_path / "split", seed=0)


def test_separate_dev_test_keeps_orders():
    from activeit.pool import separate_dev_test

    dev, test = separate_dev_test(["t1", "d1", "t2", "d2"], ["t2", "d1", "t1", "d2"], ["t1", "t2"], "x")
    assert dev == ("d1", "d2") and test == ("t2", "t1")
    with pytest.raises(TaskFormatError, match="x: task 't3' is an official test task but only in the dev list"):
        separate_dev_test(["t1", "t3"], ["t1"], ["t1", "t3"], "x")
    with pytest.raises(TaskFormatError, match="task 'd9' is in the test list but not an official test task"):
        separate_dev_test(["t1"], ["t1", "d9"], ["t1"], "x")


def test_draw_reference_split_matches_reference_files(ni_reference):
    """NI's default split, the reference's task kinds and seed 10 give the paper's TLAL_Exp0_all_10 lists."""
    from conftest import REFERENCE_SPLITS

    from activeit.pool import draw_reference_split

    lib = TaskLibrary(ni_reference, metadata=ni_reference / "task_metadata.json")
    train = _lines(ni_reference / "splits" / "default" / "train_tasks.txt")
    init_train, dev, remain = draw_reference_split(train, {n: lib.kind(n) for n in train}, seed=10, size=68)
    init = REFERENCE_SPLITS / REF / "init"
    assert init_train == _lines(init / "train_tasks.txt")
    assert dev == _lines(init / "dev_tasks.txt")[119:]
    assert remain == _lines(init / "remain_tasks.txt")


def test_draw_reference_split_hand_computed():
    import random

    from activeit.pool import draw_reference_split

    names = [f"t{i}" for i in range(8)]
    kinds = {n: "cls" if i < 3 else "gen" for i, n in enumerate(names)}
    rng = random.Random(5)
    shuffled = names.copy()
    rng.shuffle(shuffled)
    cls = [n for n in shuffled if kinds[n] == "cls"]
    gen = [n for n in shuffled if kinds[n] == "gen"]
    rest = cls[1:] + gen[1:]
    rng.shuffle(rest)
    assert draw_reference_split(names, kinds, 5, 2) == (rest[:2], [cls[0], gen[0]], rest[2:])
    only_gen = {n: "gen" for n in names}
    train, dev, remain = draw_reference_split(names, only_gen, 5, 2)
    assert len(dev) == 2 and len(train) == 2 and len(remain) == 4


def test_ni_default_split_is_the_reference_split(ni_reference):
    from conftest import REFERENCE_SPLITS

    lib = TaskLibrary(ni_reference, metadata=ni_reference / "task_metadata.json")
    drawn = initial_pool(lib, "default", seed=10)
    given = initial_pool(lib, REFERENCE_SPLITS / REF, seed=0)
    assert drawn == given


def test_write_reference_split_round_trips(ni_reference, tmp_path):
    from conftest import REFERENCE_SPLITS

    from activeit.pool import write_reference_split

    lib = TaskLibrary(ni_reference, metadata=ni_reference / "task_metadata.json")
    state = write_reference_split(tmp_path / "mine", lib, "default", seed=10)
    for name in ("train", "dev", "test", "remain", "excluded"):
        assert _lines(tmp_path / "mine" / "init" / f"{name}_tasks.txt") == \
            _lines(REFERENCE_SPLITS / REF / "init" / f"{name}_tasks.txt"), name
    assert initial_pool(lib, tmp_path / "mine", seed=0) == state


def write_pool(path, n=30, reverse=False):
    import json

    rows = [{"instruction": f"Write the word number {i}.", "input": "", "output": f"word {i}"} for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in (rows[::-1] if reverse else rows)))
    return path


def test_auto_split_draw_by_hand():
    from activeit.pool import draw_auto_split
    from activeit.rng import make_rng

    names = [f"t{i}" for i in range(10)]
    order = make_rng(4, "auto-split").permutation(10)
    shuffled = [sorted(names)[i] for i in order]
    state = draw_auto_split(names[::-1], seed=4, initial=3, held_out=2, dev=1)
    assert state == PoolState(train=tuple(shuffled[3:6]), dev=(shuffled[2],), test=tuple(shuffled[:2]),
                              remain=tuple(shuffled[6:]))
    # the test set stays when the initial size changes
    assert draw_auto_split(names, seed=4, initial=5, held_out=2).test == state.test
    with pytest.raises(TaskFormatError, match="10 tasks cannot give 2 held-out, 1 dev and 8 initial"):
        draw_auto_split(names, seed=4, initial=8, held_out=2, dev=1)


def test_auto_split_of_a_jsonl_pool_ignores_record_order(tmp_path):
    forward = TaskLibrary(write_pool(tmp_path / "a" / "pool.jsonl"))
    backward = TaskLibrary(write_pool(tmp_path / "b" / "pool.jsonl", reverse=True))
    assert forward.names() == backward.names()
    pool = initial_pool(forward, "auto", seed=3, chunk=4, held_out=5, dev=2)
    assert pool == initial_pool(backward, "auto", seed=3, chunk=4, held_out=5, dev=2)
    assert (len(pool.train), len(pool.dev), len(pool.test), len(pool.remain)) == (4, 2, 5, 19)
    assert pool != initial_pool(forward, "auto", seed=4, chunk=4, held_out=5, dev=2)
    with pytest.raises(TaskFormatError, match="needs the initial train size: set rounds.initial"):
        initial_pool(forward, "auto", seed=3)


def test_auto_split_replayed_from_files_equals_the_draw(tmp_path):
    lib = TaskLibrary(write_pool(tmp_path / "pool.jsonl"))
    drawn = initial_pool(lib, "auto", seed=3, chunk=4, held_out=5)
    drawn.save(tmp_path / "split" / "init")
    assert initial_pool(lib, tmp_path / "split", seed=99) == drawn


def test_jsonl_or_flat_directory_with_a_named_split_says_use_auto(tmp_path, ni_mini):
    import shutil

    lib = TaskLibrary(write_pool(tmp_path / "pool.jsonl"))
    with pytest.raises(TaskFormatError, match=r"split 'default': .*pool.jsonl is an instruction dataset without split "
                                              r"files; use data.split: auto"):
        initial_pool(lib, "default", seed=0)
    (tmp_path / "flat").mkdir()
    for path in sorted((ni_mini / "tasks").glob("*.json"))[:6]:
        shutil.copy(path, tmp_path / "flat")
    flat = TaskLibrary(tmp_path / "flat")
    with pytest.raises(TaskFormatError, match="has no splits/; use data.split: auto"):
        initial_pool(flat, "default", seed=0)
    assert len(initial_pool(flat, "auto", seed=0, chunk=2, dev=1).remain) == 3


def test_config_pool_draws_auto_with_rounds_sizes(tmp_path):
    from activeit.config import config_from_dict
    from activeit.pool import config_pool

    path = write_pool(tmp_path / "pool.jsonl")
    cfg = config_from_dict({"data": {"path": str(path), "split": "auto", "held_out": 3},
                            "rounds": {"sizes": [4, 8, 12]}, "seed": 5})
    pool = config_pool(TaskLibrary(path), cfg)
    assert (len(pool.train), len(pool.test), len(pool.dev), len(pool.remain)) == (4, 3, 0, 23)
    assert pool == initial_pool(TaskLibrary(path), "auto", seed=5, chunk=4, held_out=3)
