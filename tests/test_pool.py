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
