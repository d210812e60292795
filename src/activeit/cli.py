"""The `activeit` command line (typer). Command names and options are a contract (docs/semantics.md).

Every user-caused error is an `ActiveitError`: one line on stderr, exit code 2, no traceback.
Heavy imports (torch, transformers) happen inside commands so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from activeit.errors import ActiveitError

app = typer.Typer(
    name="activeit",
    help="Active instruction tuning: score the task pool, pick the most useful tasks, train, evaluate, repeat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
tasks_app = typer.Typer(help="Inspect and validate task directories.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print speed ratios measured in one run.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(bench_app, name="bench")

ConfigArg = Annotated[Path, typer.Argument(help="Run config (YAML).", show_default=False)]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key: --set scoring.perturbations=5 (value parsed as YAML). Repeatable."),
]


class BenchBf16(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def _load(config: Path, overrides: list[str] | None):
    from activeit.config import load_config

    return load_config(config, overrides or [])


# --------------------------------------------------------------------------- tasks


@tasks_app.command("list")
def tasks_list(
    directory: Annotated[str, typer.Argument(help="NI-style directory (tasks/*.json), task folder, JSONL dataset or bundled:demo.")],
    metadata: Annotated[Optional[Path], typer.Option(help="TSV/JSON overriding kind/categories.")] = None,
) -> None:
    """Print a table of the tasks: name, kind, first category, number of instances."""
    from tqdm import tqdm

    from activeit.tasks import TaskLibrary

    library = TaskLibrary(directory, metadata=metadata, cache_size=0)
    rows = [(s.name, s.kind, s.category, str(s.n_instances))
            for s in tqdm(library.summaries(), total=len(library), desc="reading tasks", unit="task",
                          disable=not sys.stderr.isatty(), leave=False)]
    header = ("name", "kind", "category", "instances")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    kinds = [r[1] for r in rows]
    typer.echo(f"{len(rows)} tasks: {kinds.count('cls')} cls, {kinds.count('gen')} gen")


@tasks_app.command("validate")
def tasks_validate(
    directory: Annotated[str, typer.Argument(help="NI-style directory, task folder or JSONL dataset.")],
) -> None:
    """Check every task file and split file; list every problem. Exit 0 if clean, 2 otherwise."""
    from activeit.tasks import validate_directory

    problems = validate_directory(directory)
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(2)
    typer.echo(f"{directory}: ok")


# --------------------------------------------------------------------------- prompt and config


@app.command()
def prompt(
    directory: Annotated[str, typer.Argument(help="NI-style directory or bundled:demo.")],
    task: Annotated[str, typer.Argument(help="Task name (file stem).")],
    instance: Annotated[Optional[str], typer.Option("--instance", help="Instance id (default: the first instance).")] = None,
    num_pos_examples: Annotated[int, typer.Option(help="Positive examples to show.")] = 2,
    no_definition: Annotated[bool, typer.Option("--no-definition", help="Leave the definition out.")] = False,
    causal: Annotated[bool, typer.Option("--causal", help="Show the causal-model form (no trailing space).")] = False,
) -> None:
    """Print the Tk-Instruct encoded prompt of one instance."""
    from activeit.errors import TaskFormatError
    from activeit.prompts import encode, model_prompt
    from activeit.tasks import TaskLibrary

    library = TaskLibrary(directory)
    t = library.load(library.require(task, "task"))
    if instance is None:
        inst = t.instances[0]
    else:
        matches = [i for i in t.instances if i.id == instance]
        if not matches:
            raise TaskFormatError(f"task {task!r} has no instance with id {instance!r}")
        inst = matches[0]
    source = encode(t, inst, num_pos_examples=num_pos_examples, add_definition=not no_definition)
    typer.echo(model_prompt(source, causal=causal), nl=False)
    typer.echo("")


@app.command()
def validate(
    config: ConfigArg,
    set_: SetOpt = None,
    task_lists: Annotated[Optional[Path], typer.Option("--task-lists", help="Also check the per-round lists `activeit run --task-lists DIR` would replay.")] = None,
) -> None:
    """Check a config without loading a model: keys, values, registry names, data paths, and the
    round-0 pool (tasks per list with their cls/gen counts, and where the kinds come from)."""
    from activeit.pipeline import check_config

    cfg = _load(config, set_)
    for line in check_config(cfg, task_lists):
        typer.echo(line)
    typer.echo(f"{config}: ok")


# --------------------------------------------------------------------------- scoring and selection


@app.command()
def score(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Directory for records.jsonl and tasks.json.")],
    set_: SetOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Score with this model (a trained run's model/adapter dir) instead of model.name.")] = None,
    tasks: Annotated[Optional[Path], typer.Option("--tasks", help="Score these tasks (one name a line) instead of the split's remain pool.")] = None,
) -> None:
    """Score the remain pool of the config's split: prompt uncertainty, prediction probability, perplexity.

    Writes OUT/records.jsonl (one line per task, instance and perturbation) and OUT/tasks.json.
    An interrupted call resumes after the blocks of tasks already scored (none is scored twice).
    """
    from activeit.pool import config_pool, read_task_list
    from activeit.scores import identical_warning, score_tasks
    from activeit.strategies import scores_to_compute
    from activeit.tasks import TaskLibrary

    _tune_process()
    cfg = _load(config, set_)
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    names = read_task_list(tasks, library) if tasks else list(config_pool(library, cfg).remain)
    compute = scores_to_compute(cfg, all_by_default=True)
    lm = _load_model(cfg, model)
    result = score_tasks(lm, library, names, cfg, out, compute=compute)
    _print_top(result)
    warning = identical_warning(result)
    if warning:
        typer.echo(warning, err=True)
    typer.echo(f"wrote {out / 'records.jsonl'} and {out / 'tasks.json'}")


def _tune_process() -> None:
    """Process-wide settings the native engine runs faster with: the CLI owns the process, so it decides."""
    from activeit.engine import configure_process

    configure_process()


def _load_model(cfg, path: str | None):
    if path is None:
        from activeit.models import load_from_config

        return load_from_config(cfg.model)
    from activeit.models import load_trained

    return load_trained(path, cfg)


def _print_top(scores, n: int = 5) -> None:
    ranked = sorted((s for s in scores.values() if s.prompt_uncertainty is not None),
                    key=lambda s: (-s.prompt_uncertainty, s.task))
    if ranked:
        typer.echo(f"top {min(n, len(ranked))} tasks by prompt uncertainty:")
        for s in ranked[:n]:
            typer.echo(f"  {s.prompt_uncertainty:.4f}  PP {s.prediction_probability:.3f}  {s.region:<9}  {s.task}")


@app.command()
def select(
    config: ConfigArg,
    scores: Annotated[Path, typer.Option("--scores", help="tasks.json written by `activeit score`.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the picked names here (one a line).")] = None,
    set_: SetOpt = None,
    k: Annotated[Optional[int], typer.Option("-k", help="How many tasks (default: round 0's pick: rounds.sizes[1] - sizes[0], rounds.chunk, else the initial train size).")] = None,
) -> None:
    """Pick tasks from a scored pool with the config's strategy (and cls/gen ratio)."""
    from activeit.pool import config_pool, write_task_list
    from activeit.scores import read_task_scores
    from activeit.strategies import check_scores_available, select_for_round
    from activeit.tasks import TaskLibrary

    cfg = _load(config, set_)
    table, _ = read_task_scores(scores)
    check_scores_available(cfg.strategy.name, table.values())
    if k is None and cfg.rounds.sizes and len(cfg.rounds.sizes) > 1:
        k = cfg.rounds.sizes[1] - cfg.rounds.sizes[0]
    if k is None:
        k = cfg.rounds.chunk or len(config_pool(TaskLibrary(cfg.data.path, metadata=cfg.data.metadata), cfg).train)
    picked = select_for_round(cfg.strategy, cfg.strategy.name, list(table.values()), table, k, cfg.seed, 0)
    for name in picked:
        typer.echo(name)
    if out:
        write_task_list(out, picked)


@app.command()
def taskmap(
    scores: Annotated[Path, typer.Argument(help="tasks.json written by `activeit score`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Image to write (png, pdf or svg).")] = Path("task_map.png"),
    title: Annotated[str, typer.Option(help="Plot title.")] = "Task map",
    annotate: Annotated[int, typer.Option(help="Label the N tasks of highest prompt uncertainty.")] = 0,
) -> None:
    """Plot prompt uncertainty vs prediction probability (ambiguous / easy / difficult tasks)."""
    from activeit.report import plot_task_map
    from activeit.scores import read_task_scores

    table, _ = read_task_scores(scores)
    plot_task_map(table, out, title=title, annotate=annotate)
    typer.echo(f"wrote {out}")


# --------------------------------------------------------------------------- training and evaluation


@app.command("train")
def train_command(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Output directory: adapter/ (LoRA) or model/, train_result.json.")],
    set_: SetOpt = None,
    tasks: Annotated[Optional[Path], typer.Option("--tasks", help="Train on these tasks (one name a line) instead of the split's initial train list.")] = None,
    dev_tasks: Annotated[Optional[Path], typer.Option("--dev-tasks", help="Pick the best checkpoint on these tasks instead of the split's dev list.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Train again even if OUT holds a finished run of this config.")] = False,
) -> None:
    """Fine-tune a fresh model from model.name on the split's train tasks (best checkpoint by a dev metric).

    An interrupted run resumes from its last checkpoint in OUT/checkpoints when run again.
    """
    from activeit.pool import config_pool, read_task_list
    from activeit.tasks import TaskLibrary
    from activeit.training import train

    _tune_process()
    cfg = _load(config, set_)
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    pool = None if tasks and dev_tasks else config_pool(library, cfg)
    names = read_task_list(tasks, library) if tasks else list(pool.train)
    dev = read_task_list(dev_tasks, library) if dev_tasks else list(pool.dev)
    result = train(cfg, names, out, dev_tasks=dev, library=library, force=force)
    losses = [h["loss"] for h in result.loss_history]
    loss_text = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else f"loss {result.train_loss:.4f}"
    typer.echo(f"trained on {result.n_examples} instances of {result.n_tasks} tasks: {result.steps} steps, {loss_text}, "
               f"{result.tokens_per_s:.0f} tokens/s, {result.wall_s:.0f} s, peak RSS {result.peak_rss_mb:.0f} MiB")
    if result.best_metric is not None and result.best_value is not None:
        typer.echo(f"best dev {result.best_metric} {result.best_value:.2f} at step {result.best_step}")
    typer.echo(f"wrote {result.model_dir} and {out / 'train_result.json'}")


@app.command("evaluate")
def evaluate_command(
    config: ConfigArg,
    model: Annotated[str, typer.Option("--model", help="A `train` output directory, an adapter or model directory, or a model name.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for predictions.jsonl and metrics.json.")],
    split: Annotated[str, typer.Option("--split", help="dev or test: which task list of the config's split.")] = "test",
    set_: SetOpt = None,
    tasks: Annotated[Optional[Path], typer.Option("--tasks", help="Evaluate on these tasks (one name a line) instead of the split's list.")] = None,
) -> None:
    """Greedy predictions on the dev or test tasks -> OUT/predictions.jsonl and OUT/metrics.json."""
    from activeit.evaluate import evaluate_model

    _tune_process()
    cfg = _load(config, set_)
    metrics = evaluate_model(cfg, model, split=split, out_dir=out, tasks_file=tasks)
    kinds = "".join(f", {k} {m['rougeL']:.2f}" for k, m in metrics["by_kind"].items())
    typer.echo(f"{split}: {metrics['n']} instances of {metrics['n_tasks']} tasks: rougeL {metrics['rougeL']:.2f}{kinds}; "
               f"exact_match {metrics['exact_match']:.2f}")
    typer.echo(f"wrote {out / 'predictions.jsonl'} and {out / 'metrics.json'}")


@app.command("metrics")
def metrics_command(
    predictions: Annotated[Path, typer.Argument(help="predictions.jsonl written by `activeit evaluate`.")],
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object (the metrics.json content).")] = False,
    average: Annotated[str, typer.Option("--average", help="instance (pooled, as the reference) or task (mean of task scores).")] = "instance",
    split: Annotated[Optional[str], typer.Option("--split", help="Only the records of this split (a run's round file holds dev and test).")] = None,
) -> None:
    """Recompute exact match, ROUGE-1 and ROUGE-L from a predictions file (overall, per kind, category, task)."""
    from activeit.errors import ConfigError
    from activeit.metrics import format_table, metrics_from_file

    if average not in ("instance", "task"):
        raise ConfigError(f"--average must be 'instance' or 'task', got {average!r}")
    metrics = metrics_from_file(predictions, average=average, split=split)
    if json_:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
    else:
        typer.echo(format_table(metrics))


@app.command()
def split(
    out: Annotated[Path, typer.Option("--out", help="Directory to write (OUT/init/*_tasks.txt); must not hold a split yet.")],
    data: Annotated[Optional[str], typer.Argument(help="NI checkout (tasks/ + splits/), task directory or JSONL/JSON instruction dataset (default: the --config's data.path).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the draw (default: the --config's seed, else 10; NI: Python `random` as the reference's write_TLAL_split, the paper used 10, 20, 30, 40, 50).")] = None,
    from_split: Annotated[Optional[str], typer.Option("--from", help="Split to draw from: a name under DATA/splits/, a directory with train/test/excluded_tasks.txt, or `auto` (all tasks; the default for data without splits/).")] = None,
    metadata: Annotated[Optional[Path], typer.Option("--metadata", help="Task kinds for the balanced dev set: the reference's task_metadata.json or a TSV (default: inferred).")] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="NI: the reference's `chunks`: the pool is cut into ROUNDS + 1 parts of train//(ROUNDS+1) tasks.")] = 10,
    balance_dev: Annotated[bool, typer.Option("--balance-dev/--no-balance-dev", help="NI: half cls, half gen dev tasks (the paper's splits).")] = True,
    initial: Annotated[Optional[int], typer.Option("--initial", min=1, help="auto: initial train tasks (default: the --config's rounds.initial / sizes[0] / chunk).")] = None,
    held_out: Annotated[Optional[int], typer.Option("--held-out", min=0, help="auto: held-out test tasks (default: the --config's data.held_out, else 0).")] = None,
    dev: Annotated[Optional[int], typer.Option("--dev", min=0, help="auto: dev tasks (default: the --config's data.dev, else 0).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Take data path, metadata, seed and sizes from this run config.")] = None,
    set_: SetOpt = None,
) -> None:
    """Draw a new task pool in the reference layout, to share and replay as `data.split: OUT`.

    An NI split (DATA/splits/): exactly the reference notebook's write_TLAL_split: the initial train
    list, a cls/gen-balanced dev set, and the remain pool, each a chunk of the train split;
    dev_tasks.txt and test_tasks.txt both list the test tasks followed by the dev tasks, as in the
    paper's files. `auto` (an instruction dataset, or data without splits/): the draw of
    `data.split: auto` with the same seed and sizes, so the files replay that run's lists.
    """
    from activeit.config import AUTO_SPLIT
    from activeit.errors import ConfigError
    from activeit.pool import LISTS, auto_pool, pool_lines, write_reference_split
    from activeit.tasks import TaskLibrary

    cfg = _load(config, set_) if config is not None else None
    if data is None:
        if cfg is None:
            raise ConfigError("activeit split: give DATA or --config")
        data = cfg.data.path
    if metadata is None and cfg is not None and cfg.data.metadata:
        metadata = Path(cfg.data.metadata)
    if any((out / "init" / f"{name}_tasks.txt").exists() for name in LISTS):
        raise typer.BadParameter(f"{out / 'init'} already holds a split; choose another --out", param_hint="--out")
    library = TaskLibrary(data, metadata=metadata, cache_size=0)
    if from_split is None:
        from_split = "default" if (library.root / "splits").is_dir() else AUTO_SPLIT
    seed = seed if seed is not None else cfg.seed if cfg is not None else 10
    if from_split == AUTO_SPLIT:
        if initial is None and cfg is not None:
            initial = cfg.rounds.initial_size()
        if initial is None:
            raise ConfigError("activeit split: an auto draw needs --initial N (or a --config with rounds.initial, "
                              "rounds.sizes or rounds.chunk)")
        state = auto_pool(library, seed, initial,
                          held_out if held_out is not None else cfg.data.held_out if cfg is not None else 0,
                          dev if dev is not None else cfg.data.dev if cfg is not None else 0)
        state.save(out / "init")
    else:
        if initial is not None or held_out is not None or dev is not None:
            raise ConfigError(f"activeit split: --initial, --held-out and --dev are for an auto draw; split "
                              f"{from_split!r} draws its initial train and dev lists as the reference does (--rounds)")
        state = write_reference_split(out, library, from_split, seed, rounds, balance_dev)
    for line in pool_lines(state, library):
        typer.echo(line)
    typer.echo(f"kinds: {library.kinds_source}")
    typer.echo(f"wrote {out / 'init'}")
    library.flush()


# --------------------------------------------------------------------------- runs and reports


@app.command()
def run(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Run directory; an existing one is resumed.")],
    set_: SetOpt = None,
    force_from_round: Annotated[Optional[int], typer.Option("--force-from-round", help="Redo every step of round N and later.")] = None,
    task_lists: Annotated[Optional[Path], typer.Option("--task-lists", help="Replay per-round train lists DIR/<name>_<round>/train_tasks.txt instead of selecting; <name> is the strategy or the reference's name for it (Random, HighPerplexity, LowPerplexity, FCGRatioPI-...-High-...).")] = None,
) -> None:
    """Run the active instruction tuning loop for every strategy and seed (resumes if OUT exists).

    Each round: train from the base model on all picked tasks, evaluate on dev and test,
    score the remain pool, pick the next tasks. With evaluation.judge, every round from 1 on is
    also judged against another strategy's model of that round. Writes OUT/summary.json and OUT/report/.
    """
    import logging

    from activeit.distributed import is_main
    from activeit.pipeline import run_experiment
    from activeit.report import write_report

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _tune_process()
    cfg = _load(config, set_)
    root = run_experiment(cfg, out, force_from_round=force_from_round, task_lists=task_lists,
                          progress=sys.stderr.isatty(), echo=_echo)
    if not is_main():
        return
    write_report(root)
    summary = root / "report" / "summary.md"
    if summary.is_file():
        typer.echo(summary.read_text(encoding="utf-8"))
    typer.echo(f"report: {root / 'report'}")


def _echo(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run directory (resumed if it exists).")] = Path("runs/demo"),
    set_: SetOpt = None,
) -> None:
    """Run the bundled demo offline: SmolLM2-135M + LoRA on the demo pool, prompt uncertainty vs random, 3 rounds.

    Uses configs/demo.yaml (shipped in the package); about 10 minutes on 2 CPU cores.
    """
    import time

    from activeit.config import bundled_config

    started = time.perf_counter()
    run(bundled_config("demo"), out=out, set_=set_, force_from_round=None, task_lists=None)
    typer.echo(f"demo finished in {time.perf_counter() - started:.0f} s")


@app.command()
def status(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Show which steps of a run are finished."""
    from activeit.rundir import status_lines

    for line in status_lines(run_dir):
        typer.echo(line)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """(Re)write RUN/report/: learning curves, task maps, summary.md."""
    from activeit.report import write_report
    from activeit.rundir import load_run, write_summary

    cfg, _ = load_run(run_dir)
    write_summary(run_dir, cfg)
    out = write_report(run_dir)
    typer.echo((out / "summary.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {out}")


@app.command()
def judge(
    a: Annotated[str, typer.Option("--a", help="Side A: a run directory (its final model), a round directory, or a model name.")],
    b: Annotated[str, typer.Option("--b", help="Side B: same forms as --a.")],
    questions: Annotated[Path, typer.Option("--questions", help="JSONL of {id?, instruction, input?} (Self-Instruct's user-oriented format works).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for answers, verdicts.jsonl and summary.json (resumed if it exists).")],
    judge_: Annotated[str, typer.Option("--judge", help="A local model name/directory, or an OpenAI-compatible URL "
                                                       "(key from $ACTIVEIT_JUDGE_API_KEY or $OPENAI_API_KEY).")] = "smollm2-135m",
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Model name sent to a URL judge "
                                                                            "(default: $ACTIVEIT_JUDGE_MODEL, else gpt-4).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Settings for models outside a run and for a local judge "
                                                                    "(prompt format, dtype, generation); default: built-in defaults.")] = None,
    set_: SetOpt = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", min=1, help="Answer length limit (default: evaluation.max_new_tokens of each side's config).")] = None,
    rule: Annotated[str, typer.Option("--rule", help="both_orders: a side wins only when preferred in both orders; "
                                                     "calibrated (local judge): the side its log-odds favour averaged over both orders.")] = "both_orders",
) -> None:
    """Which model answers user instructions better? A judge compares A's and B's answers pairwise.

    Each pair is judged in both orders; a side wins only when preferred both times, otherwise it
    is a tie. Writes OUT/answers_a.jsonl, OUT/answers_b.jsonl, OUT/verdicts.jsonl and
    OUT/summary.json {wins, ties, losses} (counted for A). The default local judge, SmolLM2-135M,
    is only good for trying the command; pass a strong model or a URL for real comparisons.
    """
    from activeit.config import load_config
    from activeit.errors import ConfigError
    from activeit.judge import run_judge

    cfg = load_config(config, set_ or [])
    _tune_process()
    if rule not in ("both_orders", "calibrated"):
        raise ConfigError(f"--rule {rule!r}: one of both_orders, calibrated")
    summary = run_judge(a, b, questions, out, judge=judge_, cfg=cfg, url_model=judge_model, rule=rule,  # type: ignore[arg-type]
                        max_new_tokens=max_new_tokens, progress=sys.stderr.isatty(), echo=_echo)
    if summary is None:
        return
    rate = summary["win_rate"]
    rate_text = f"A win rate {100 * rate:.1f}%" if rate is not None else "no valid verdicts"
    invalid = f", {summary['invalid']} invalid" if summary["invalid"] else ""
    typer.echo(f"A {summary['wins']} wins, {summary['ties']} ties, {summary['losses']} losses of {summary['n']}{invalid}: {rate_text}")
    typer.echo(f"wrote {out / 'verdicts.jsonl'} and {out / 'summary.json'}")


# --------------------------------------------------------------------------- benchmarks


@bench_app.command("scoring")
def bench_scoring(
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures to this JSON file.")] = None,
    data: Annotated[Optional[Path], typer.Option(help="NI-style directory (default: ../shared/data/ni-mini).")] = None,
    tasks: Annotated[int, typer.Option(help="Tasks to use, spread over the sorted names.")] = 5,
    bf16: Annotated[BenchBf16, typer.Option(
        help="Time (c), native in bf16? auto: only where the CPU has bf16 instructions (AVX512-BF16, AMX); "
             "without them torch emulates bf16 and its matmuls run ~100x slower than float32.")] = BenchBf16.auto,
    engines: Annotated[str, typer.Option(
        help="Backends to time, comma-separated, of hf, native, vllm (hf, the baseline, always runs).")] = "hf,native",
) -> None:
    """Prompt-uncertainty scoring through the engine backends in one run: hf (reference-style baseline)
    vs native float32 vs native bf16, and vllm float32 / bf16 with --engines hf,native,vllm (SmolLM2)."""
    from activeit.bench import scoring_benchmark

    scoring_benchmark(data, n_tasks=tasks, json_path=json_path, bf16=bf16.value,
                      engines=[e.strip() for e in engines.split(",") if e.strip()], echo=typer.echo)


@bench_app.command("stream")
def bench_stream(
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures to this JSON file.")] = None,
    records: Annotated[int, typer.Option(min=1, help="Records in the synthetic instruction pool.")] = 52_000,
    work_dir: Annotated[Optional[Path], typer.Option("--dir", help="Keep the pool, model and scores here (default: a temporary directory).")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Torch threads (the tiny model's products are too small to split).")] = 1,
) -> None:
    """Score a synthetic 52K-record instruction pool × 11 prompts with a tiny random-weight model, streamed
    to disk: peak RSS and seconds per 1,000 records."""
    from activeit.bench import stream_benchmark

    _tune_process()
    stream_benchmark(records, json_path=json_path, work_dir=work_dir, threads=threads, echo=typer.echo)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 2.

    In a multi-process launch only the main process prints results; the others' stdout would repeat them.
    """
    from activeit.distributed import is_main

    if not is_main():
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    try:
        app(args=argv, prog_name="activeit")
    except ActiveitError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted (finished steps are kept; run the same command again to resume)", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
