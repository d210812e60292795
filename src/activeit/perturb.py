"""Word-drop perturbations of a task's instruction, the input of prompt uncertainty (docs/semantics.md).

A task gets K perturbed prompts, built once and shared by all its scored instances; variant 0
is the original prompt. Variant k of task t depends only on (seed, round, t, k) — or on (seed, t, k)
when the round is not given, so that a task keeps its perturbations across rounds. Optionally each
variant also perturbs the scored instances' inputs, and an attempt that leaves every text as it was
is drawn again (`redraw_identical`), from streams keyed by the attempt as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from activeit.errors import ConfigError
from activeit.rng import make_rng
from activeit.tasks import Example, Instance, Task

Target = Literal["definition", "examples", "both"]
TARGETS: tuple[str, ...] = ("definition", "examples", "both")
MaskNumbering = Literal["per_text", "per_prompt"]


@dataclass(frozen=True)
class PromptVariant:
    """The instruction part of a prompt: definition and the demonstrations shown."""

    index: int
    definition: str
    examples: tuple[Example, ...]
    inputs: Mapping[str, str] = field(default_factory=dict)
    """Perturbed input of each scored instance, by instance id (`perturb_input`); absent: its own input."""
    attempt: int = 0
    """Which draw this is: > 0 when earlier draws left every text as it was (`redraw_identical`)."""

    def input_of(self, instance: Instance) -> str:
        return self.inputs.get(instance.id, instance.input)


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
    instances: Sequence[Instance] = (),
    redraw_identical: int = 0,
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

    `instances` (the scored ones, with `scoring.perturb_input`): each perturbed variant also drops
    words of their inputs, from a stream per instance id. `redraw_identical`: a variant whose texts
    leave some instance's prompt as the original's is drawn again, up to that many times; attempt 0
    is the draw made without the option, so results without it are unchanged.
    """
    if target not in TARGETS:
        raise ConfigError(f"scoring.target must be one of {', '.join(TARGETS)}, got {target!r}")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"scoring.drop_rate must be in [0, 1], got {rate}")
    candidates = list(task.positive_examples) + list(extra_examples)
    shown = tuple((candidates if pad_examples else task.positive_examples)[:num_pos_examples])
    round_key = () if round_index is None else (int(round_index),)

    def stream(index: int, attempt: int, *more: object) -> np.random.Generator:
        redraw = ("redraw", attempt) if attempt else ()
        return make_rng(seed, "perturb", *round_key, task.name, index, *redraw, *more)

    def draw_examples(index: int, attempt: int = 0) -> tuple[Example, ...]:
        rng = stream(index, attempt)
        take = min(num_pos_examples, len(candidates))
        chosen = rng.choice(len(candidates), size=take, replace=False) if take else []
        return tuple(candidates[i] for i in chosen)

    def draw_variant(index: int, attempt: int) -> PromptVariant:
        shared = _Masks(mask_tokens) if mask_tokens else None

        def masks() -> _Masks | None:
            if not mask_tokens:
                return None
            return shared if mask_numbering == "per_prompt" else _Masks(mask_tokens)

        if target == "examples":
            definition, examples = task.definition, draw_examples(index, attempt)
        else:
            rng = stream(index, attempt)
            definition = drop_words(task.definition, rate, rng, masks())
            examples = shown
            if target == "both":
                examples = tuple(Example(drop_words(ex.input, rate, rng, masks()), ex.output, ex.explanation)
                                 for ex in shown)
        inputs = {}
        for inst in instances:
            numbering = _Masks(mask_tokens) if mask_tokens else None
            if numbering is not None and shared is not None and mask_numbering == "per_prompt":
                numbering.used = shared.used
            inputs[inst.id] = drop_words(inst.input, rate, stream(index, attempt, "input", inst.id), numbering)
        return PromptVariant(index, definition, examples, inputs, attempt)

    if target == "examples" and resample_original:
        original = PromptVariant(0, task.definition, draw_examples(0))
    else:
        original = PromptVariant(0, task.definition, shown)
    variants = [original]
    for index in range(1, k + 1):
        for attempt in range(redraw_identical + 1):
            variant = draw_variant(index, attempt)
            if not _unchanged(variant, original, instances):
                break
        variants.append(variant)
    return variants


def _unchanged(variant: PromptVariant, original: PromptVariant, instances: Sequence[Instance]) -> bool:
    """The variant leaves some scored instance's prompt texts exactly as the original's."""
    if variant.definition != original.definition or variant.examples != original.examples:
        return False
    return not instances or any(variant.input_of(inst) == inst.input for inst in instances)
