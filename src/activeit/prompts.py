"""Tk-Instruct prompt encoding (definition + positive examples + instance), as in docs/semantics.md.

`encode` returns the reference source text. Causal models get it with trailing whitespace
removed (`model_prompt`), and their training target is `" " + output + EOS` (`training_target`).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from activeit.errors import ConfigError
from activeit.tasks import Example, Instance, Task

PUNCTUATION = frozenset(string.punctuation)


def _with_period(text: str) -> str:
    """Append '.' unless the text already ends in ASCII punctuation (reference rule)."""
    return text if text and text[-1] in PUNCTUATION else text + "."


def definition_part(definition: str) -> str:
    return _with_period("Definition: " + definition.strip()) + "\n\n"


def example_part(index: int, example: Example) -> str:
    """One positive example; `index` counts from 1."""
    return (
        f" Positive Example {index} -\n"
        + _with_period(f"Input: {example.input.strip()}") + "\n"
        + _with_period(f" Output: {example.output.strip()}") + "\n\n"
    )


def instance_part(instance_input: str) -> str:
    return "Now complete the following example -\n" + _with_period(f"Input: {instance_input.strip()}") + "\n" + "Output: "


def _n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text)["input_ids"])


def build_source(
    definition: str | None,
    examples: Sequence[Example],
    instance_input: str,
    *,
    tokenizer: Any = None,
    max_source_length: int | None = None,
) -> str:
    """The source text from its parts (the perturbation code passes perturbed parts).

    Examples are added in order while the source fits `max_source_length` tokens; the fit
    check joins the kept examples with one space, as the reference does, while the source
    joins them with nothing. A source still too long keeps its first `max_source_length` tokens.
    """
    head = definition_part(definition) if definition is not None else ""
    tail = instance_part(instance_input)
    limit = max_source_length if tokenizer is not None else None
    kept: list[str] = []
    for i, example in enumerate(examples, 1):
        part = example_part(i, example)
        if limit is not None and _n_tokens(tokenizer, head + " ".join(kept) + part + tail) > limit:
            break
        kept.append(part)
    source = head + "".join(kept) + tail
    if limit is not None:
        ids = tokenizer(source)["input_ids"]
        if len(ids) > limit:
            source = tokenizer.decode(ids[:limit], skip_special_tokens=True)
    return source


def encode(
    task: Task,
    instance: Instance,
    *,
    num_pos_examples: int = 2,
    add_definition: bool = True,
    tokenizer: Any = None,
    max_source_length: int | None = None,
) -> str:
    """The Tk-Instruct source for one instance (reference default: definition + 2 examples)."""
    return build_source(
        task.definition if add_definition else None,
        task.positive_examples[:num_pos_examples],
        instance.input,
        tokenizer=tokenizer,
        max_source_length=max_source_length,
    )


def model_prompt(source: str, *, causal: bool, tokenizer: Any = None, chat_template: bool = False) -> str:
    """What is fed to the model: causal models get no trailing whitespace after `Output:`.

    With `chat_template` the source becomes the user turn of the tokenizer's chat template.
    """
    if chat_template:
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):

            raise ConfigError("model.chat_template is true but the tokenizer has no chat template")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": source.rstrip()}], tokenize=False, add_generation_prompt=True)
    return source.rstrip() if causal else source


def training_target(output: str, *, causal: bool, eos_token: str | None = None, chat_template: bool = False) -> str:
    """Seq2seq: the output as is (the tokenizer appends EOS). Causal: `" " + output + EOS`."""
    if not causal:
        return output.strip()
    lead = "" if chat_template else " "
    return lead + output.strip() + (eos_token or "")
