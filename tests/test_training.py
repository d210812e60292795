"""Training: data encoding and label masking, loss going down, LoRA and full, resume, best checkpoint, CLI."""

import json
import tempfile
from pathlib import Path

import pytest
import torch

from activeit.cli import main
from activeit.config import load_config
from activeit.errors import ConfigError
from activeit.tasks import TaskLibrary
from activeit.models import load_trained
from activeit.training import (
    IGNORE_INDEX,
    PadCollator,
    TrainResult,
    accumulation_steps,
    build_examples,
    encode_example,
    resolve_best_metric,
    train,
    training_arguments,
    training_instances,
)

TASKS = {
    "task001_sentiment": ("Classify the sentiment as positive or negative.", "Sentiment Analysis", [
        ("The movie was great", "positive"), ("The food was delicious", "positive"), ("The weather is cold", "negative"),
        ("The movie was bad", "negative"), ("The quick brown fox", "positive"), ("Sort the list", "negative")]),
    "task002_capital": ("Given a question, generate an answer.", "Question Answering", [
        ("What is the capital of France?", "Paris"), ("What is the capital of Italy?", "Rome"),
        ("What is the capital of Spain?", "Madrid"), ("What is the capital of Peru?", "Lima"),
        ("What is the capital of Chile?", "Santiago")]),
    "task003_yesno": ("Answer yes or no.", "Answer Verification", [
        ("Is the fox quick?", "yes"), ("Is the weather cold?", "yes"), ("Is the food bad?", "no"),
        ("Is one more than two?", "no")]),
    "task004_count": ("Count the letters in the word.", "Counting", [
        ("cat", "3"), ("fox", "3"), ("quick", "5"), ("weather", "7")]),
}
SPLIT = {"train": ["task002_capital", "task004_count"], "dev": ["task001_sentiment"], "test": ["task003_yesno"],
         "remain": [], "excluded": []}


def write_pool(root: Path) -> Path:
    """A 4-task NI-style directory with a reference-layout split `tiny` (also used by test_evaluate)."""
    (root / "tasks").mkdir(parents=True, exist_ok=True)
    for name, (definition, category, pairs) in TASKS.items():
        data = {"Definition": [definition], "Categories": [category],
                "Positive Examples": [{"input": pairs[0][0], "output": pairs[0][1], "explanation": ""}],
                "Instances": [{"id": f"{name}-{i}", "input": a, "output": [b]} for i, (a, b) in enumerate(pairs)]}
        (root / "tasks" / f"{name}.json").write_text(json.dumps(data))
    init = root / "splits" / "tiny" / "init"
    init.mkdir(parents=True, exist_ok=True)
    for name, names in SPLIT.items():
        (init / f"{name}_tasks.txt").write_text("".join(n + "\n" for n in names))
    return root


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    return write_pool(tmp_path_factory.mktemp("pool"))


def make_config(model_dir, data, *overrides):
    return load_config(None, [
        f"model.name={model_dir}", "model.dtype=float32", "model.device=cpu", f"data.path={data}", "data.split=tiny",
        "training.per_device_batch_size=2", "training.learning_rate=3e-3", "training.warmup_steps=0",
        "training.logging_steps=1", "training.bf16=false", "training.best_metric=null", "prompt.max_source_length=256",
        "evaluation.max_new_tokens=4", *overrides])


def tokenizer_of(model_dir):
    from activeit.models import load_tokenizer

    return load_tokenizer(str(model_dir))


# --------------------------------------------------------------------------- data


def test_training_instances_are_a_seeded_shuffle(pool):
    task = TaskLibrary(pool).load("task001_sentiment")
    first = training_instances(task, 3, seed=1)
    assert first == training_instances(task, 3, seed=1)
    assert len(first) == 3 and len({i.id for i in first}) == 3
    assert training_instances(task, 6, seed=1)[:3] == first  # the first N of one shuffle
    assert {i.id for i in training_instances(task, 100, seed=1)} == {i.id for i in task.instances}
    assert any(training_instances(task, 6, seed=s) != training_instances(task, 6, seed=1) for s in range(2, 6))


def test_causal_labels_cover_only_the_target(pool, tiny_causal_dir):
    from activeit.prompts import encode, model_prompt

    cfg = make_config(tiny_causal_dir, pool)
    tok = tokenizer_of(tiny_causal_dir)
    task = TaskLibrary(pool).load("task002_capital")
    inst = task.instances[1]
    ex = encode_example(task, inst, tok, cfg, causal=True)
    source = encode(task, inst, num_pos_examples=2, tokenizer=tok, max_source_length=256)
    prompt_ids = tok(model_prompt(source, causal=True))["input_ids"]
    target_ids = tok(" Rome", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert ex["input_ids"] == prompt_ids + target_ids
    assert ex["labels"] == [IGNORE_INDEX] * len(prompt_ids) + target_ids

    batch = PadCollator(tok.pad_token_id)(build_examples([task], tok, cfg, causal=True)[:3])
    for row in range(3):
        n = int(batch["attention_mask"][row].sum())
        labels = batch["labels"][row]
        assert (labels[n:] == IGNORE_INDEX).all()  # padding is not trained on
        trained = labels[labels != IGNORE_INDEX]
        assert trained[-1] == tok.eos_token_id  # EOS is a target token
        assert tok.decode(trained[:-1]).startswith(" ")  # " " + output
        assert (batch["input_ids"][row, :n][labels[:n] != IGNORE_INDEX] == trained).all()


def test_training_target_is_redrawn_each_epoch_seeded(pool, tiny_seq2seq_dir):
    """ni_collator: labels = random.choice(instance outputs) every time an example is collated."""
    from activeit.tasks import Instance
    from activeit.training import TrainingSet, encode_targets

    cfg = make_config(tiny_seq2seq_dir, pool)
    tok = tokenizer_of(tiny_seq2seq_dir)
    task = TaskLibrary(pool).load("task002_capital")
    inst = Instance("multi", "What is the capital of France?", ("Paris", "Rome", "Lima"))
    choices = encode_targets(task, inst, tok, cfg, causal=False)
    assert [c["labels"] for c in choices] == [tok(text_target=t)["input_ids"] for t in inst.outputs]
    assert all(c["input_ids"] == choices[0]["input_ids"] for c in choices)
    data = TrainingSet([(task.name, inst.id, choices)], seed=3)
    seen = []
    for epoch in range(12):
        data.epoch = epoch
        seen.append(data[0]["labels"])
        assert data[0] == data[0]  # the same within an epoch
    assert len({tuple(x) for x in seen}) == 3  # every reference is trained on over the epochs
    again = TrainingSet([(task.name, inst.id, choices)], seed=3)
    assert [again.choice(0, e) for e in range(12)] == [data.choice(0, e) for e in range(12)]
    first = TrainingSet([(task.name, inst.id, choices)], seed=3, sampling="first")
    assert all(first.choice(0, e) == 0 for e in range(12))
    with pytest.raises(IndexError):
        data[1]


def test_epoch_callback_sets_the_epoch_of_a_resumed_run_too():
    from types import SimpleNamespace

    from activeit.training import TrainingSet, _epoch_callback

    data = TrainingSet([], seed=0)
    callback = _epoch_callback(data)
    for epoch, expected in ((None, 0), (0.0, 0), (1.0, 1), (2.5, 2)):
        callback.on_epoch_begin(None, SimpleNamespace(epoch=epoch), None)
        assert data.epoch == expected


def test_build_examples_default_and_first_option(pool, tiny_causal_dir):
    cfg = make_config(tiny_causal_dir, pool)
    assert cfg.training.target_sampling == "random"
    tok = tokenizer_of(tiny_causal_dir)
    task = TaskLibrary(pool).load("task002_capital")
    data = build_examples([task], tok, cfg, causal=True)
    assert len(data) == len(task.instances) and data.sampling == "random"
    # one reference each: every epoch trains on output[0], as encode_example does
    assert [list(x["labels"]) for x in data] == [encode_example(task, i, tok, cfg, causal=True)["labels"]
                                                 for i in training_instances(task, 200, cfg.seed)]


def test_causal_target_truncation_keeps_eos(pool, tiny_causal_dir):
    cfg = make_config(tiny_causal_dir, pool, "prompt.max_target_length=2")
    tok = tokenizer_of(tiny_causal_dir)
    task = TaskLibrary(pool).load("task002_capital")
    ex = encode_example(task, task.instances[4], tok, cfg, causal=True)  # " Santiago" is more than 1 token
    trained = [t for t in ex["labels"] if t != IGNORE_INDEX]
    assert len(trained) == 2 and trained[-1] == tok.eos_token_id


def test_seq2seq_labels_are_the_tokenized_target(pool, tiny_seq2seq_dir):
    cfg = make_config(tiny_seq2seq_dir, pool)
    tok = tokenizer_of(tiny_seq2seq_dir)
    task = TaskLibrary(pool).load("task002_capital")
    ex = encode_example(task, task.instances[0], tok, cfg, causal=False)
    assert ex["labels"] == tok(text_target="Paris")["input_ids"] and ex["labels"][-1] == tok.eos_token_id
    assert ex["input_ids"][-1] == tok.eos_token_id
    batch = PadCollator(tok.pad_token_id, pad_to_multiple_of=8)([ex, encode_example(task, task.instances[4], tok, cfg, causal=False)])
    assert batch["input_ids"].shape[1] % 8 == 0 and batch["labels"].shape[1] == 8


def test_effective_batch_size_sets_accumulation(pool, tiny_causal_dir):
    cfg = make_config(tiny_causal_dir, pool, "training.per_device_batch_size=4", "training.effective_batch_size=32")
    assert accumulation_steps(cfg, world_size=1) == 8
    assert accumulation_steps(cfg, world_size=2) == 4
    with pytest.raises(ConfigError, match="effective_batch_size"):
        accumulation_steps(cfg, world_size=3)
    assert accumulation_steps(make_config(tiny_causal_dir, pool, "training.gradient_accumulation_steps=3")) == 3


def test_bf16_true_on_a_cpu_without_bf16_instructions_warns(monkeypatch, caplog):
    import activeit.models as models
    import activeit.training as training

    for module in (models, training):
        monkeypatch.setattr(module, "cpu_supports_bf16", lambda: False)
    models.warn_if_bf16_emulated.cache_clear()
    cpu = torch.device("cpu")
    with caplog.at_level("WARNING", logger="activeit.models"):
        assert training.use_bf16("auto", cpu) is False and training.use_bf16(False, cpu) is False
        assert not caplog.records
        assert training.use_bf16(True, cpu) is True
    models.warn_if_bf16_emulated.cache_clear()
    assert len(caplog.records) == 1 and "training.bf16 true" in caplog.records[0].getMessage()


def test_training_arguments(pool, tiny_causal_dir, tmp_path):
    cfg = make_config(tiny_causal_dir, pool, "training.best_metric=rougeL_cls", "seed=7", "training.bf16=true",
                      "training.lr_scheduler=constant_with_warmup", "training.warmup_steps=5")
    args = training_arguments(cfg, tmp_path, device=torch.device("cpu"), best_metric="rougeL_cls")
    assert (args.seed, args.data_seed, args.bf16, args.warmup_steps) == (7, 7, True, 5)
    assert args.eval_strategy == "epoch" and args.save_strategy == "epoch" and args.load_best_model_at_end
    assert args.metric_for_best_model == "rougeL_cls" and args.greater_is_better
    args = training_arguments(make_config(tiny_causal_dir, pool, "training.save_steps=3"), tmp_path,
                              device=torch.device("cpu"), best_metric=None)
    assert args.eval_strategy == "no" and args.save_strategy == "steps" and args.save_steps == 3
    assert not args.load_best_model_at_end
    with pytest.raises(ConfigError, match="training"):
        training_arguments(make_config(tiny_causal_dir, pool, "training.lr_scheduler=sideways"), tmp_path,
                           device=torch.device("cpu"), best_metric=None)


def test_best_metric_falls_back_without_dev_tasks_of_that_kind(pool, tiny_causal_dir):
    lib = TaskLibrary(pool)
    cfg = make_config(tiny_causal_dir, pool, "training.best_metric=rougeL_cls")
    assert resolve_best_metric(cfg, [lib.load("task001_sentiment")]) == "rougeL_cls"
    assert resolve_best_metric(cfg, [lib.load("task002_capital")]) == "rougeL"
    assert resolve_best_metric(cfg, []) is None
    assert resolve_best_metric(make_config(tiny_causal_dir, pool), [lib.load("task001_sentiment")]) is None


# --------------------------------------------------------------------------- training runs


def _losses(result: TrainResult) -> list[float]:
    return [h["loss"] for h in result.loss_history]


@pytest.mark.parametrize("kind, lora", [("causal", False), ("causal", True), ("seq2seq", False), ("seq2seq", True)])
def test_loss_goes_down(kind, lora, pool, tiny_causal_dir, tiny_seq2seq_dir, tmp_path):
    model_dir = tiny_causal_dir if kind == "causal" else tiny_seq2seq_dir
    cfg = make_config(model_dir, pool, "training.epochs=6", f"training.lora.enabled={lora}",
                      "training.learning_rate=1e-2" if lora else "training.learning_rate=3e-3")
    result = train(cfg, ["task002_capital", "task004_count"], tmp_path / "out")
    losses = _losses(result)
    assert result.steps == 6 * 5 and len(losses) == 30  # 9 instances, batch 2: 5 steps an epoch
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert result.n_examples == 9 and result.tokens > 0 and result.tokens_per_s > 0 and result.peak_rss_mb > 0
    out = tmp_path / "out"
    assert (out / ("adapter" if lora else "model")).is_dir() and not (out / ("model" if lora else "adapter")).exists()
    assert not (out / "checkpoints").exists()
    assert TrainResult.read(out / "train_result.json") == result
    lm = load_trained(out, cfg)
    assert lm.causal == (kind == "causal") and not lm.model.training
    assert not any("lora" in name for name, _ in lm.model.named_parameters())  # merged


def test_full_training_resumes_to_the_same_weights_and_is_deterministic(pool, tiny_causal_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class Interrupt(Exception):
        pass

    class InterruptAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise Interrupt()

    cfg = make_config(tiny_causal_dir, pool, "training.epochs=2", "training.save_steps=2", "training.lora.enabled=true",
                      "training.lora.dropout=0.1", "training.learning_rate=1e-2")
    tasks = ["task002_capital", "task004_count"]
    straight = train(cfg, tasks, tmp_path / "straight")
    with pytest.raises(Interrupt):
        train(cfg, tasks, tmp_path / "resumed", callbacks=[InterruptAfterSave()])
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-4").is_dir()
    assert not (tmp_path / "resumed" / "train_result.json").exists()
    resumed = train(cfg, tasks, tmp_path / "resumed")
    assert resumed.resumed_from.endswith("checkpoint-4") and resumed.steps == straight.steps == 10
    assert _losses(resumed) == _losses(straight)
    a = load_file(tmp_path / "straight" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a finished run is reused, not retrained
    again = train(cfg, tasks, tmp_path / "straight")
    assert again == straight


def test_best_checkpoint_by_dev_metric(pool, tiny_causal_dir, tmp_path):
    cfg = make_config(tiny_causal_dir, pool, "training.epochs=3", "training.best_metric=rougeL_cls",
                      "evaluation.dev_instances=3")
    result = train(cfg, ["task002_capital", "task004_count"], tmp_path / "out", dev_tasks=["task001_sentiment"])
    assert result.best_metric == "rougeL_cls" and [h["step"] for h in result.eval_history] == [5, 10, 15]
    best = max(h["rougeL_cls"] for h in result.eval_history)
    assert result.best_value == best
    assert result.best_step == next(h["step"] for h in result.eval_history if h["rougeL_cls"] == best)
    assert result.eval_s > 0 and result.dev_tasks == ["task001_sentiment"]


# --------------------------------------------------------------------------- CLI


def test_cli_train(pool, tiny_causal_dir, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  path: {pool}\n  split: tiny\ntraining:\n  epochs: 1\n  per_device_batch_size: 4\n"
                      "  bf16: false\n  warmup_steps: 0\nevaluation:\n  dev_instances: 2\n  max_new_tokens: 4\n"
                      "prompt:\n  max_source_length: 128\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(config), "--set", f"model.name={tiny_causal_dir}", "--set", "model.dtype=float32",
              "--set", "training.lora.enabled=true", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert (exit_info.value.code or 0) == 0
    assert "trained on 9 instances of 2 tasks: 3 steps" in out and "best dev rougeL_cls" in out
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    assert result["tasks"] == SPLIT["train"] and result["dev_tasks"] == SPLIT["dev"] and result["lora"]
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()


def test_cli_train_bad_config_value_exits_2(pool, tiny_causal_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "/nonexistent.yaml", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "config file not found" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  path: {pool}\n  split: tiny\ntraining:\n  best_metric: bleu\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(config), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "training.best_metric" in capsys.readouterr().err


@pytest.mark.parametrize("lora", [False, True])
def test_target_only_loss_equals_the_default_loss(tiny_causal_dir, lora):
    """The trainer's loss (LM head on target positions only) equals transformers' own causal-LM loss."""
    import torch

    from activeit.config import load_config
    from activeit.models import load_model
    from activeit.tasks import TaskLibrary
    from activeit.training import PadCollator, _lora_model, _trainer_class, build_examples, training_arguments

    cfg = load_config(None, [f"model.name={tiny_causal_dir}", "model.dtype=float32", "prompt.max_source_length=128",
                             f"training.lora.enabled={str(lora).lower()}", "training.bf16=false"])
    base = load_model(str(tiny_causal_dir), dtype="float32", device="cpu")
    model = _lora_model(base.model, cfg, causal=True) if lora else base.model
    model.eval()
    examples = build_examples([TaskLibrary("bundled:demo").load("demo001_review_sentiment")], base.tokenizer, cfg, causal=True)[:4]
    batch = PadCollator(base.tokenizer.pad_token_id)(examples)
    args = training_arguments(cfg, Path(tempfile.mkdtemp()), device=torch.device("cpu"), best_metric=None)
    trainer = _trainer_class()(model=model, args=args, train_dataset=examples, loaded=base, run_config=cfg)
    with torch.no_grad():
        ours = trainer.compute_loss(model, dict(batch))
        reference = model(**batch).loss
        n_items = (batch["labels"][:, 1:] != -100).sum()
        ours_sum = trainer.compute_loss(model, dict(batch), num_items_in_batch=n_items * 2)
    assert trainer._head_parts[0] is not None
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    assert ours_sum.item() == pytest.approx(reference.item() / 2, rel=1e-5)
