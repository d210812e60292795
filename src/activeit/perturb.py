"""Word-drop perturbations of a task's instruction, the input of prompt uncertainty (DESIGN.md §3).

A task gets K perturbed prompts, built once and shared by all its scored instances; variant 0
is the original prompt. Variant k of task t depends only on (seed, t, k).
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
) -> list[PromptVariant]:
    """Variant 0 (the original prompt) and K perturbed variants of `task`'s instruction.

    `definition` drops words of the definition; `both` also of the inputs of the examples
    shown (never their outputs); `examples` keeps the definition and re-draws which
    `num_pos_examples` demonstrations are shown, from the task's positive examples plus
    `extra_examples` (instances not used for scoring).
    """
    if target not in TARGETS:
        raise ConfigError(f"scoring.target must be one of {', '.join(TARGETS)}, got {target!r}")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"scoring.drop_rate must be in [0, 1], got {rate}")
    shown = tuple(task.positive_examples[:num_pos_examples])
    variants = [PromptVariant(0, task.definition, shown)]
    candidates = list(task.positive_examples) + list(extra_examples)
    for index in range(1, k + 1):
        rng = make_rng(seed, "perturb", task.name, index)
        masks = _Masks(mask_tokens) if mask_tokens else None
        if target == "examples":
            take = min(num_pos_examples, len(candidates))
            chosen = rng.choice(len(candidates), size=take, replace=False) if take else []
            variants.append(PromptVariant(index, task.definition, tuple(candidates[i] for i in chosen)))
            continue
        definition = drop_words(task.definition, rate, rng, masks)
        examples = shown
        if target == "both":
            examples = tuple(Example(drop_words(ex.input, rate, rng, masks), ex.output, ex.explanation) for ex in shown)
        variants.append(PromptVariant(index, definition, examples))
    return variants
