"""Word-drop perturbations of a task's instruction, the input of prompt uncertainty (docs/semantics.md).

A task gets K perturbed prompts, built once and shared by all its scored instances; variant 0
is the original prompt. Variant k of task t depends only on (seed, round, t, k) — or on (seed, t, k)
when the round is not given, so that a task keeps its perturbations across rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from activeit.errors import ConfigError
from activeit.rng import make_rng
from activeit.tasks import Example, Task

Target = Literal["definition", "examples", "both"]
TARGETS: tuple[str, ...] = ("definition", "examples", "both")
MaskNumbering = Literal["per_text", "per_prompt"]


@dataclass(frozen=True)
class PromptVariant:
    """The instruction part of a prompt: definition and the demonstrations shown."""

    index: int
    definition: str
    examples: tuple[Example, ...]


class _Masks:
    """Hands out mask tokens in order (T5 sentinels `<extra_id_0>`, `<extra_id_1>`, ...)."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(tokens)
        self.used = 0

    def next(self) -> str:
        token = self.tokens[min(self.used, len(self.tokens) - 1)]
        self.used += 1
        return token


def drop_words(text: str, rate: float, rng: np.random.Generator, masks: _Masks | None = None) -> str:
    """Split on whitespace, drop each word with probability `rate` (or mask it), re-join with spaces."""
    words = text.split()
    if not words:
        return text
    dropped = rng.random(len(words)) < rate
    kept = []
    for word, drop in zip(words, dropped):
        if not drop:
            kept.append(word)
        elif masks is not None:
            kept.append(masks.next())
    return " ".join(kept)


def mask_tokens_for(tokenizer: Any) -> list[str]:
    """The tokens that replace dropped words when `mask: true`: T5 sentinels, else mask/unk."""
    sentinels = [f"<extra_id_{i}>" for i in range(100)]
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    if sentinels[0] in vocab:
        return [t for t in sentinels if t in vocab]
    for attr in ("mask_token", "unk_token"):
        token = getattr(tokenizer, attr, None)
        if token:
            return [token]
    raise ConfigError("scoring.mask is true but the tokenizer has no mask, sentinel or unk token")


def perturbations(
    task: Task,
    *,
    k: int,
    rate: float,
    target: Target = "both",
    seed: int = 0,
    num_pos_examples: int = 2,
    mask_tokens: Sequence[str] | None = None,
    extra_examples: Sequence[Example] = (),
    round_index: int | None = None,
    pad_examples: bool = True,
    resample_original: bool = True,
    mask_numbering: MaskNumbering = "per_text",
) -> list[PromptVariant]:
    """Variant 0 (the original prompt) and K perturbed variants of `task`'s instruction.

    `definition` drops words of the definition; `both` also of the inputs of the examples
    shown (never their outputs); `examples` keeps the definition and re-draws which
    `num_pos_examples` demonstrations are shown, from the task's positive examples plus
    `extra_examples` (instances not used for scoring) — for variant 0 too when
    `resample_original` (the reference samples for every perturbation id). With `pad_examples`
    the demonstrations shown are the first `num_pos_examples` of positive + extra examples, so a
    task with too few positive examples is shown unscored instances (the reference appends them).
    Mask sentinels restart at the first one in every perturbed text (`per_text`, the reference's
    `random_drop_word`) or run on through the prompt (`per_prompt`).
    """
    if target not in TARGETS:
        raise ConfigError(f"scoring.target must be one of {', '.join(TARGETS)}, got {target!r}")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"scoring.drop_rate must be in [0, 1], got {rate}")
    candidates = list(task.positive_examples) + list(extra_examples)
    shown = tuple((candidates if pad_examples else task.positive_examples)[:num_pos_examples])
    round_key = () if round_index is None else (int(round_index),)

    def draw_examples(index: int) -> tuple[Example, ...]:
        rng = make_rng(seed, "perturb", *round_key, task.name, index)
        take = min(num_pos_examples, len(candidates))
        chosen = rng.choice(len(candidates), size=take, replace=False) if take else []
        return tuple(candidates[i] for i in chosen)

    if target == "examples" and resample_original:
        variants = [PromptVariant(0, task.definition, draw_examples(0))]
    else:
        variants = [PromptVariant(0, task.definition, shown)]
    for index in range(1, k + 1):
        if target == "examples":
            variants.append(PromptVariant(index, task.definition, draw_examples(index)))
            continue
        rng = make_rng(seed, "perturb", *round_key, task.name, index)
        shared = _Masks(mask_tokens) if mask_tokens else None

        def masks() -> _Masks | None:
            if not mask_tokens:
                return None
            return shared if mask_numbering == "per_prompt" else _Masks(mask_tokens)

        definition = drop_words(task.definition, rate, rng, masks())
        examples = shown
        if target == "both":
            examples = tuple(Example(drop_words(ex.input, rate, rng, masks()), ex.output, ex.explanation)
                             for ex in shown)
        variants.append(PromptVariant(index, definition, examples))
    return variants
