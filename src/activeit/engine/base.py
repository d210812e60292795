"""What every inference backend shares: result types and the target-id rule (docs/semantics.md).

A backend scores targets given prompts (token count, mean cross-entropy, p = exp(-mean CE))
and generates greedily with the same stop rules; everything above `activeit.engine` sees only
these types, so backends can be swapped and checked against each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from tqdm import tqdm

from activeit.models import LoadedModel

Target = str | Sequence[int]
Finish = Literal["eos", "stop", "length"]


@dataclass(frozen=True)
class TargetScore:
    """Length-normalised likelihood of one target: `p = exp(-mean_ce)`."""

    n_tokens: int
    mean_ce: float
    p: float

    @classmethod
    def from_sum(cls, ce_sum: float, n_tokens: int) -> TargetScore:
        mean = ce_sum / n_tokens
        return cls(n_tokens, mean, math.exp(-mean))


@dataclass(frozen=True)
class Generation:
    """A greedy output. `token_ids` include the token that ended it (EOS or the stop-string token)."""

    text: str
    token_ids: list[int]
    finish: Finish
    score: TargetScore | None = None
    """Likelihood of `token_ids` under the prompt, computed while generating (None if no tokens)."""


@dataclass
class Work:
    """What an engine ran, for throughput and FLOP accounting (pass one in to have it filled)."""

    tokens: int = 0
    """Token positions run through the transformer body (padding included)."""
    logit_rows: int = 0
    """Positions the output head (vocabulary projection) was applied to."""
    forwards: int = 0


class Engine(Protocol):
    """An inference backend bound to one loaded model."""

    name: str
    lm: LoadedModel

    def score(self, prompts: Sequence[str], targets: Sequence[Target], *, batch_size: int = 32,
              progress: bool = False, work: Work | None = None) -> list[TargetScore]:
        """Likelihood of each target (text, or exact token ids) given its prompt, in input order."""
        ...

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, stop_strings: Sequence[str] = ("\n",),
                 batch_size: int = 32, progress: bool = False, work: Work | None = None) -> list[Generation]:
        """Greedy outputs in input order, each with the likelihood of its tokens."""
        ...


def target_ids(lm: LoadedModel, text: str) -> list[int]:
    """Token ids of a text target, the training convention (`prompts.training_target`).

    Seq2seq: the tokenizer's ids of the stripped text (T5 appends EOS). Causal:
    `tokenizer(" " + text.strip(), add_special_tokens=False)` ids followed by EOS.
    """
    tok = lm.tokenizer
    if not lm.causal:
        return list(tok(text.strip())["input_ids"])
    if tok.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token, which causal text targets end with")
    return list(tok(" " + text.strip(), add_special_tokens=False)["input_ids"]) + [tok.eos_token_id]


def resolve_target(lm: LoadedModel, target: Target) -> list[int]:
    ids = target_ids(lm, target) if isinstance(target, str) else [int(t) for t in target]
    if not ids:
        raise ValueError("a target must have at least one token")
    return ids


def prompt_ids(lm: LoadedModel, prompts: Sequence[str]) -> list[list[int]]:
    ids = [list(x) for x in lm.tokenizer(list(prompts))["input_ids"]]
    if lm.causal and any(not x for x in ids):
        raise ValueError("a causal model needs at least one prompt token (got an empty prompt)")
    return ids


def score_ids(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[Target]) -> tuple[list[list[int]], list[list[int]]]:
    """The (prompt, target) token ids of a `score` call, by the one rule every backend follows."""
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
    if not prompts:
        return [], []
    return prompt_ids(lm, prompts), [resolve_target(lm, t) for t in targets]


def eos_ids(lm: LoadedModel) -> set[int]:
    ids = {lm.tokenizer.eos_token_id} if lm.tokenizer.eos_token_id is not None else set()
    gen_eos = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else {gen_eos}
    return ids


def pad_id(lm: LoadedModel) -> int:
    return lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0


@contextmanager
def inference(model: Any) -> Iterator[None]:
    """Eval and inference mode for the duration of an engine call, restoring the training flag after
    (training evaluates on dev between epochs with the model it is training)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def progress_bar(total: int, enabled: bool, desc: str) -> tqdm:
    return tqdm(total=total, disable=not enabled, desc=desc, unit="pair" if desc == "scoring" else "prompt",
                leave=False)


class StopTokens:
    """Whether a token's decoded text contains a stop string (decoded once per token id)."""

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str]):
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stop_strings if s)
        self.seen: dict[int, bool] = {}

    def __call__(self, token: int) -> bool:
        if not self.stops:
            return False
        if token not in self.seen:
            text = self.tokenizer.decode([token])
            self.seen[token] = any(s in text for s in self.stops)
        return self.seen[token]


def generation_text(lm: LoadedModel, ids: Sequence[int], finish: Finish, stop_strings: Sequence[str]) -> str:
    """The text of a greedy output: decoded before the ending token (special tokens skipped),
    cut at the first stop string (causal models), stripped."""
    body = list(ids) if finish == "length" else list(ids[:-1])
    text = lm.tokenizer.decode(body, skip_special_tokens=True)
    if lm.causal:
        for stop in stop_strings:
            if stop:
                text = text.split(stop, 1)[0]
    return text.strip()
