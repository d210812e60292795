"""Pairwise judging of two models' answers (`activeit judge`): wins, ties and losses of A against B.

The paper's Self-Instruct evaluation asks a judge (GPT-4) which of two answers to a user
instruction is better. Judges favour whichever answer they read first, so every pair is
judged twice, once in each order; a side wins only when the judge prefers it both times, and
any disagreement is a tie (or, with the `calibrated` rule and a local judge, the side its log-odds
favour averaged over both orders wins). Identical answers are ties without asking. The judge is a local
model (the next-token probabilities of "1" and "2" decide; fast and deterministic) or an
OpenAI-compatible chat-completions URL (the reply's last `[[1]]` / `[[2]]` / `[[tie]]`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from activeit import atomic, distributed
from activeit.config import Config
from activeit.engine import engine_for
from activeit.errors import ConfigError, RunStateError, TaskFormatError
from activeit.evaluate import generate_texts
from activeit.models import LoadedModel, holds_model, load_trained
from activeit.prompts import build_source, model_prompt
from activeit.rundir import Manifest, RunLayout, Track, input_hash, load_run
from activeit.tasks import read_records, resolve_data_path

log = logging.getLogger(__name__)

Choice = Literal["1", "2", "tie"]
Rule = Literal["both_orders", "calibrated"]
Verdict = Literal["a", "b", "tie", "invalid"]

DEFAULT_JUDGE = "smollm2-135m"
DEFAULT_URL_MODEL = "gpt-4"
CHUNK = 32
"""Questions judged between two checkpoints of the partial verdicts file."""

SYSTEM = (
    "You are an impartial judge. You compare two responses to the same user instruction and decide "
    "which one follows the instruction better: correct, helpful, relevant and complete. The order in "
    "which the responses appear must not influence you, nor their length unless it matters."
)
LOCAL_ASK = "Which response is better? Answer with the number of the better response only: 1 or 2."
URL_ASK = ("Which response is better? Explain briefly, then end your reply with your verdict on its own "
           "line: [[1]] if Response 1 is better, [[2]] if Response 2 is better, or [[tie]] if they are equally good.")
_VERDICT = re.compile(r"\[\[\s*(1|2|tie)\s*\]\]", re.IGNORECASE)


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    id: str
    instruction: str
    input: str = ""


def read_questions(path: str | os.PathLike) -> list[Question]:
    """Questions from JSONL (or a JSON list): `{id?, instruction, input?}`.

    Self-Instruct's `user_oriented_instructions.jsonl` form also works: the input is taken from
    `instances[0].input`. Missing ids become `<file stem>-<index>`; ids must be unique.
    """
    path = resolve_data_path(path)
    records = read_records(path)
    questions, seen = [], set()
    for i, rec in enumerate(records):
        where = f"{path}: record {i + 1}"
        if not isinstance(rec, dict):
            raise TaskFormatError(f"{where}: must be an object with 'instruction' (and optionally 'id', 'input')")
        instruction = rec.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise TaskFormatError(f"{where}: missing or empty 'instruction'")
        inp = rec.get("input")
        if inp is None and isinstance(rec.get("instances"), list) and rec["instances"]:
            first = rec["instances"][0]
            inp = first.get("input") if isinstance(first, dict) else None
        if inp is not None and not isinstance(inp, str):
            raise TaskFormatError(f"{where}: 'input' must be a string")
        qid = rec.get("id", f"{path.stem}-{i}")
        if not isinstance(qid, (str, int)) or isinstance(qid, bool):
            raise TaskFormatError(f"{where}: 'id' must be a string or an integer")
        qid = str(qid)
        if qid in seen:
            raise TaskFormatError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        questions.append(Question(qid, instruction.strip(), (inp or "").strip()))
    if not questions:
        raise TaskFormatError(f"{path}: no questions")
    return questions


# --------------------------------------------------------------------------- the two sides


@dataclass(frozen=True)
class Side:
    """A model to answer the questions: what to load, and the config it was trained with."""

    spec: str
    """What the user passed (run directory, round directory or model name)."""
    model: str
    """What `training.load_trained` loads."""
    cfg: Config


def _run_root(path: Path) -> Path | None:
    """The run directory holding `path` (itself or up to 4 levels up), if any."""
    for d in [path, *path.parents][:5]:
        if (d / "config.yaml").is_file() and ((d / "manifest.json").is_file() or any(d.glob("round_*"))
                                               or any(d.glob("seed_*"))):
            return d
    return None


def final_models(root: Path) -> list[Path]:
    """The last trained round of every strategy × seed of a run, in config order."""

    cfg, manifest = load_run(root)
    layout = RunLayout(root, cfg.strategies, cfg.seeds)
    found: list[Path] = []
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            track = Track(seed, strategy)
            done = [i for i in range(cfg.rounds.count) if manifest.entry(layout.key(track, i, "train")) is not None]
            if done and layout.round_dir(track, max(done)) not in found:
                found.append(layout.round_dir(track, max(done)))
    return found


def _last_round(track_dir: Path) -> Path | None:
    rounds = [(int(m.group(1)), d) for d in track_dir.glob("round_*")
              if (m := re.fullmatch(r"round_(\d+)", d.name)) and holds_model(d)]
    return max(rounds)[1] if rounds else None


def resolve_side(spec: str, default_cfg: Config) -> Side:
    """A run directory (its final model), a track or round directory inside a run, or a model name.

    Models inside a run answer with the run's config (base model, prompt format, dtype); other
    models with `default_cfg`.
    """
    path = Path(spec).expanduser()
    if not path.is_dir():
        return Side(spec, spec, default_cfg)
    root = _run_root(path)
    cfg = default_cfg
    if root is not None:

        cfg, _ = load_run(root)
    if root is not None and path.resolve() == root.resolve():
        finals = final_models(root)
        if not finals:
            raise RunStateError(f"{spec}: no round of this run has finished training yet")
        if len(finals) > 1:
            listing = ", ".join(str(p) for p in finals)
            raise RunStateError(f"{spec} holds {len(finals)} trained strategies/seeds; pass one of: {listing}")
        return Side(spec, str(finals[0]), cfg)
    if holds_model(path):
        return Side(spec, str(path), cfg)
    last = _last_round(path)
    if last is None:
        raise RunStateError(f"{spec}: no trained model here (a run, track or round directory, or a model directory)")
    return Side(spec, str(last), cfg)


def answer_prompt(question: Question, tokenizer: Any, cfg: Config, *, causal: bool) -> str:
    """The Tk-Instruct prompt with the instruction as definition, as instruction datasets are trained."""
    source = build_source(question.instruction, [], question.input, tokenizer=tokenizer,
                          max_source_length=cfg.prompt.max_source_length)
    return model_prompt(source, causal=causal, tokenizer=tokenizer, chat_template=cfg.model.chat_template)


def answer_questions(side: Side, questions: Sequence[Question], *, max_new_tokens: int | None = None,
                     progress: bool = True) -> list[dict[str, Any]]:
    """Greedy answers of one side, one record per question."""
    return answer_with(load_trained(side.model, side.cfg), side.cfg, questions, max_new_tokens=max_new_tokens,
                       progress=progress)


def answer_with(lm: LoadedModel, cfg: Config, questions: Sequence[Question], *, max_new_tokens: int | None = None,
                progress: bool = True) -> list[dict[str, Any]]:
    """Greedy answers of a loaded model trained with `cfg` (a run's round model answers this way too)."""
    prompts = [answer_prompt(q, lm.tokenizer, cfg, causal=lm.causal) for q in questions]
    texts = generate_texts(engine_for(cfg, lm), prompts, max_new_tokens=max_new_tokens or cfg.evaluation.max_new_tokens,
                           stop_strings=cfg.prompt.stop_strings, batch_size=cfg.evaluation.batch_size,
                           progress=progress)
    return [{"id": q.id, "instruction": q.instruction, "input": q.input, "prompt": p, "answer": t}
            for q, p, t in zip(questions, prompts, texts)]


def answer_inputs(cfg: Config, questions_digest: str, max_new_tokens: int | None) -> dict[str, Any]:
    """What a model's answers depend on besides its weights, for input hashes."""
    return {"questions": questions_digest, "max_new_tokens": max_new_tokens, "model": cfg.section("model"),
            "prompt": cfg.section("prompt"), "evaluation": cfg.evaluation.result_inputs(), "engine": cfg.engine.result_key()}


# --------------------------------------------------------------------------- judges


@dataclass(frozen=True)
class Pair:
    """One question with two responses in the order the judge reads them."""

    question: Question
    first: str
    second: str


def judge_message(pair: Pair, ask: str) -> str:
    q = pair.question
    parts = [f"### Instruction\n{q.instruction}"]
    if q.input:
        parts.append(f"### Input\n{q.input}")
    parts += [f"### Response 1\n{pair.first or '(empty)'}", f"### Response 2\n{pair.second or '(empty)'}", ask]
    return "\n\n".join(parts)


class LocalJudge:
    """A local model: the response whose number gets the higher next-token probability is better."""

    def __init__(self, spec: str, cfg: Config, rule: Rule = "both_orders"):
        self.spec, self.rule = spec, rule
        self.lm = load_trained(spec, cfg)
        self.engine = engine_for(cfg, self.lm)
        tok = self.lm.tokenizer
        self.chat = self.lm.causal and bool(getattr(tok, "chat_template", None))
        lead = "" if self.chat or not self.lm.causal else " "
        self.options = [list(tok(lead + c, add_special_tokens=False)["input_ids"]) for c in ("1", "2")]
        if not all(self.options) or self.options[0] == self.options[1]:
            raise ConfigError(f"judge {spec!r}: its tokenizer cannot tell '1' from '2'")

    def prompt(self, pair: Pair) -> str:
        text = judge_message(pair, LOCAL_ASK)
        tok = self.lm.tokenizer
        if self.chat:
            return tok.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
                                           tokenize=False, add_generation_prompt=True)
        text = f"{SYSTEM}\n\n{text}\nBetter response:"
        return text if self.lm.causal else text + " "

    def choose(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        prompts = [self.prompt(p) for p in pairs]
        scores = self.engine.score([p for p in prompts for _ in self.options],
                                   [o for _ in prompts for o in self.options], batch_size=16)
        out = []
        for i in range(len(pairs)):
            lp1, lp2 = (-s.mean_ce * s.n_tokens for s in scores[2 * i: 2 * i + 2])
            choice: Choice = "1" if lp1 > lp2 else "2" if lp2 > lp1 else "tie"
            out.append({"choice": choice, "logprob_1": lp1, "logprob_2": lp2})
        return out


class UrlJudge:
    """An OpenAI-compatible chat-completions endpoint (a local server, or an API the user chose)."""

    def __init__(self, url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0,
                 retries: int = 3, max_tokens: int = 512):
        self.spec = url
        self.url = url if url.rstrip("/").endswith("/chat/completions") else (
            url.rstrip("/") + ("/chat/completions" if url.rstrip("/").endswith("/v1") else "/v1/chat/completions"))
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.max_tokens = max_tokens

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                if e.code not in (408, 429, 500, 502, 503, 504) or attempt == self.retries:
                    detail = e.read().decode("utf-8", "replace")[:200]
                    raise ConfigError(f"judge {self.url}: HTTP {e.code} {e.reason}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise ConfigError(f"judge {self.url}: cannot reach it ({getattr(e, 'reason', e)})") from None
            except json.JSONDecodeError:
                raise ConfigError(f"judge {self.url}: the reply is not JSON") from None
            time.sleep(min(2.0 ** attempt, 30.0))
        raise AssertionError("unreachable")

    def choose(self, pairs: Sequence[Pair]) -> list[dict[str, Any]]:
        out = []
        for pair in pairs:
            body = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                    "messages": [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": judge_message(pair, URL_ASK)}]}
            reply = self._post(body)
            try:
                text = reply["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                raise ConfigError(f"judge {self.url}: unexpected reply (no choices[0].message.content)") from None
            out.append({"choice": parse_choice(text), "reply": text})
        return out


def parse_choice(text: str) -> Choice | None:
    """The last `[[1]]`, `[[2]]` or `[[tie]]` in a judge's reply (None when there is none)."""
    found = _VERDICT.findall(text)
    return found[-1].lower() if found else None  # type: ignore[return-value]


def is_url(spec: str) -> bool:
    return re.match(r"https?://", spec) is not None


def url_model_name(url_model: str | None) -> str:
    return url_model or os.environ.get("ACTIVEIT_JUDGE_MODEL") or DEFAULT_URL_MODEL


def make_judge(spec: str, cfg: Config, *, url_model: str | None = None,
               rule: Rule = "both_orders") -> LocalJudge | UrlJudge:
    if is_url(spec):
        check_rule(spec, rule)
        key = os.environ.get("ACTIVEIT_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return UrlJudge(spec, url_model_name(url_model), api_key=key)
    return LocalJudge(spec, cfg, rule)


def check_rule(spec: str, rule: Rule) -> None:
    """`calibrated` needs the judge's probabilities of "1" and "2", which only a local judge gives."""
    if rule == "calibrated" and is_url(spec):
        raise ConfigError(f"judge rule 'calibrated' needs a local judge model (its probabilities of '1' and '2'); "
                          f"{spec} is a URL: use rule both_orders")


class LazyJudge:
    """The judge, loaded on first use and then kept: identical answers never load it, and a run
    judging many rounds loads it once."""

    def __init__(self, spec: str, cfg: Config, *, url_model: str | None = None, rule: Rule = "both_orders",
                 echo: Callable[[str], None] = lambda line: None):
        check_rule(spec, rule)
        self.spec, self.cfg, self.url_model, self.rule, self.echo = spec, cfg, url_model, rule, echo
        self.loaded: LocalJudge | UrlJudge | None = None

    def __call__(self) -> LocalJudge | UrlJudge:
        if self.loaded is None:
            self.echo(f"judge: {self.spec}")
            self.loaded = make_judge(self.spec, self.cfg, url_model=self.url_model, rule=self.rule)
        return self.loaded

    def inputs(self) -> dict[str, Any]:
        """What verdicts depend on besides the answers: the judge's identity and its instructions."""
        url = is_url(self.spec)
        identity = ({"url": self.spec, "model": url_model_name(self.url_model)} if url
                    else {"model": _model_stamp(self.spec), "cfg": self.cfg.section("model")})
        rule = {} if self.rule == "both_orders" else {"rule": self.rule}  # keeps earlier runs' hashes
        return {"judge": identity, "system": SYSTEM, "ask": URL_ASK if url else LOCAL_ASK, **rule}


# --------------------------------------------------------------------------- verdicts


def combine(a_first: Choice | None, b_first: Choice | None) -> Verdict:
    """A side wins only when preferred in both orders; a disagreement is a tie, a missing choice invalid.

    `a_first` is the judge's choice with A shown as response 1, `b_first` with B shown as response 1.
    """
    if a_first is None or b_first is None:
        return "invalid"
    if a_first == "1" and b_first == "2":
        return "a"
    if a_first == "2" and b_first == "1":
        return "b"
    return "tie"


def calibrated(margin: float) -> Verdict:
    """The `calibrated` rule: the side the position-free margin favours; a tie only at exactly 0."""
    return "a" if margin > 0 else "b" if margin < 0 else "tie"


def position_free_margin(a_first: dict[str, float], b_first: dict[str, float]) -> float:
    """How much a local judge prefers A, in log-probability, with its bias towards a slot cancelled.

    With A first the judge's log-odds of "1" over "2" are m + c, with B first -m + c, where c is
    its preference for a position; half their difference is m (balanced position calibration,
    Wang et al. 2023). Kept in each verdict record; the verdict follows it under the `calibrated` rule,
    `combine` otherwise.
    """
    return ((a_first["logprob_1"] - a_first["logprob_2"]) - (b_first["logprob_1"] - b_first["logprob_2"])) / 2


def summarize(verdicts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`{wins, ties, losses, wins_minus_losses}` from A's side, plus `invalid`, `n` and win rates over the
    valid verdicts (the paper plots wins − losses)."""
    counts = {v: sum(r["verdict"] == v for r in verdicts) for v in ("a", "tie", "b", "invalid")}
    valid = counts["a"] + counts["tie"] + counts["b"]
    return {
        "wins": counts["a"], "ties": counts["tie"], "losses": counts["b"], "invalid": counts["invalid"],
        "wins_minus_losses": counts["a"] - counts["b"], "n": len(verdicts),
        "win_rate": counts["a"] / valid if valid else None,
        "win_rate_ties_half": (counts["a"] + counts["tie"] / 2) / valid if valid else None,
    }


def judge_pairs(judge: Callable[[], LocalJudge | UrlJudge], questions: Sequence[Question], answers_a: Sequence[str],
                answers_b: Sequence[str]) -> list[dict[str, Any]]:
    """Verdict records for questions, each judged in both orders (identical answers: a tie, unasked).

    `judge` returns the judge, so that it is only loaded when some answers differ.
    """
    if not len(questions) == len(answers_a) == len(answers_b):
        raise ValueError(f"{len(questions)} questions but {len(answers_a)} and {len(answers_b)} answers")
    records: list[dict[str, Any] | None] = [None] * len(questions)
    asked, pairs = [], []
    for i, (q, a, b) in enumerate(zip(questions, answers_a, answers_b)):
        base = {"id": q.id, "instruction": q.instruction, "input": q.input, "answer_a": a, "answer_b": b}
        if a.strip() == b.strip():
            records[i] = {**base, "verdict": "tie", "a_first": None, "b_first": None, "identical": True}
        else:
            records[i] = base
            asked.append(i)
            pairs += [Pair(q, a, b), Pair(q, b, a)]
    loaded = judge() if pairs else None
    choices = loaded.choose(pairs) if loaded is not None else []
    rule = getattr(loaded, "rule", "both_orders")
    for j, i in enumerate(asked):
        a_first, b_first = choices[2 * j], choices[2 * j + 1]
        records[i] = {**records[i], "verdict": combine(a_first["choice"], b_first["choice"]),
                      "a_first": a_first, "b_first": b_first, "identical": False}
        if "logprob_1" in a_first and "logprob_1" in b_first:
            records[i]["margin"] = position_free_margin(a_first, b_first)
            if rule == "calibrated":
                records[i]["verdict"] = calibrated(records[i]["margin"])
    return records  # type: ignore[return-value]


# --------------------------------------------------------------------------- the command


def _model_stamp(model: str) -> Any:
    """What identifies a model's weights: a local directory's file sizes and times, else the name."""
    path = Path(model)
    if not path.exists():
        return model
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [str(path.resolve())] + [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def questions_digest(questions: Sequence[Question]) -> str:
    return input_hash([q.__dict__ for q in questions])


def judge_resumable(judge: Callable[[], LocalJudge | UrlJudge], questions: Sequence[Question],
                    answers_a: Sequence[str], answers_b: Sequence[str], workdir: Path, digest: str, *,
                    progress: bool = True, echo: Callable[[str], None] = lambda line: None) -> list[dict[str, Any]]:
    """`judge_pairs` over all questions, checkpointed every `CHUNK` questions to a partial file in
    `workdir` named by `digest` (the inputs' hash), so an interrupted judging resumes where it stopped.

    The caller writes the finished verdicts, then removes the partial file (`partial_path`).
    """
    partial = partial_path(workdir, digest)
    for stale in workdir.glob(".verdicts-*.partial.jsonl"):
        if stale != partial:
            stale.unlink(missing_ok=True)
    judged: list[dict[str, Any]] = atomic.read_jsonl(partial, RunStateError) if partial.is_file() else []
    if [r.get("id") for r in judged] != [q.id for q in questions[:len(judged)]]:
        judged = []
    if judged:
        echo(f"resuming judging after {len(judged)} of {len(questions)} questions")
    bar = tqdm(total=len(questions), initial=len(judged), desc="judging", unit="question",
               disable=not (progress and sys.stderr.isatty()))
    with bar:
        for part in _chunks(len(questions), CHUNK):
            if part.stop <= len(judged):
                continue
            part = range(max(part.start, len(judged)), part.stop)
            judged += judge_pairs(judge, [questions[i] for i in part], [answers_a[i] for i in part],
                                  [answers_b[i] for i in part])
            atomic.write_jsonl(partial, judged)
            atomic.crashpoint(f"judged-{len(judged)}")
            bar.update(len(part))
    return judged


def partial_path(workdir: Path, digest: str) -> Path:
    return workdir / f".verdicts-{digest}.partial.jsonl"


def run_judge(
    a: str,
    b: str,
    questions_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    judge: str = DEFAULT_JUDGE,
    cfg: Config | None = None,
    url_model: str | None = None,
    rule: Rule = "both_orders",
    max_new_tokens: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = lambda line: None,
) -> dict[str, Any] | None:
    """`activeit judge`: answers of A and B, verdicts in both orders, `summary.json` {wins, ties, losses}.

    Writes OUT/answers_a.jsonl, OUT/answers_b.jsonl, OUT/verdicts.jsonl, OUT/summary.json (all
    atomically) and OUT/manifest.json; a rerun skips the steps whose inputs did not change, and an
    interrupted judging resumes from its last checkpoint. In a multi-process launch only the main
    process works (the others return None at once): the work is small and runs one model at a time.
    """
    if not distributed.is_main():
        return None

    cfg = cfg or Config()
    out = Path(out)
    questions = read_questions(questions_path)
    sides = {"a": resolve_side(a, cfg), "b": resolve_side(b, cfg)}
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out)

    def done(step: str, digest: str, *files: Path) -> bool:
        entry = manifest.entry(step)
        return entry is not None and entry["hash"] == digest and all(f.is_file() for f in files)

    q_digest = questions_digest(questions)
    answers: dict[str, list[str]] = {}
    for key, side in sides.items():
        path = out / f"answers_{key}.jsonl"
        digest = input_hash({**answer_inputs(side.cfg, q_digest, max_new_tokens), "weights": _model_stamp(side.model)})
        if done(f"answers_{key}", digest, path):
            rows = atomic.read_jsonl(path, RunStateError)
            echo(f"{key.upper()}: answers reused from {path}")
        else:
            echo(f"{key.upper()}: answering {len(questions)} questions with {side.model}")
            started = time.perf_counter()
            rows = answer_questions(side, questions, max_new_tokens=max_new_tokens, progress=progress)
            atomic.write_jsonl(path, rows)
            manifest.finish(f"answers_{key}", digest, {"spec": side.spec, "model": side.model}, [path.name],
                            time.perf_counter() - started)
        answers[key] = [r["answer"] for r in rows]

    lazy = LazyJudge(judge, cfg, url_model=url_model, rule=rule, echo=echo)
    judge_id = lazy.inputs()
    digest = input_hash({"questions": q_digest, "a": answers["a"], "b": answers["b"], **judge_id})
    verdicts_path, summary_path = out / "verdicts.jsonl", out / "summary.json"
    if done("verdicts", digest, verdicts_path, summary_path):
        echo(f"verdicts reused from {verdicts_path}")
        return json.loads(summary_path.read_text(encoding="utf-8"))

    started = time.perf_counter()
    judged = judge_resumable(lazy, questions, answers["a"], answers["b"], out, digest, progress=progress, echo=echo)
    url = is_url(judge)
    summary = {**summarize(judged), "a": a, "b": b, "a_model": sides["a"].model, "b_model": sides["b"].model,
               "judge": judge, **({"judge_model": judge_id["judge"]["model"]} if url else {}),
               "questions": str(questions_path), "seconds": round(time.perf_counter() - started, 1)}
    atomic.write_jsonl(verdicts_path, judged)
    atomic.write_json(summary_path, summary)
    manifest.finish("verdicts", digest, {"judge": judge, "questions": str(questions_path)},
                    [verdicts_path.name, summary_path.name], summary["seconds"])
    partial_path(out, digest).unlink(missing_ok=True)
    return summary
