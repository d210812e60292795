import pytest

from activeit.prompts import build_source, encode, model_prompt, training_target
from activeit.tasks import Example, Instance, Task


class WordTokenizer:
    """Counts whitespace-separated words, plus one end-of-sequence token (like T5)."""

    def __call__(self, text):
        return {"input_ids": list(range(len(text.split()))) + [-1]}

    def decode(self, ids, skip_special_tokens=False):
        raise AssertionError("not used in these tests")


def task(definition="Say if the review is positive", examples=(), instances=()):
    return Task(
        name="task1_demo",
        definition=definition,
        positive_examples=list(examples),
        negative_examples=[],
        categories=["Sentiment Analysis"],
        instances=list(instances) or [Instance("i0", "Loved it", ("positive",))],
        kind="cls",
    )


EX1 = Example("Great film", "positive")
EX2 = Example("Is it bad?", "negative.")


def test_definition_and_two_examples_exact_string():
    t = task(examples=[EX1, EX2, Example("unused", "x")])
    expected = (
        "Definition: Say if the review is positive.\n\n"
        " Positive Example 1 -\nInput: Great film.\n Output: positive.\n\n"
        " Positive Example 2 -\nInput: Is it bad?\n Output: negative.\n\n"
        "Now complete the following example -\nInput: Loved it.\nOutput: "
    )
    assert encode(t, t.instances[0]) == expected


def test_trailing_question_mark_and_whitespace_kept_without_period():
    t = task(definition="  Is this review positive?  ", instances=[Instance("i", "  What a film!\n", ("yes",))])
    assert encode(t, t.instances[0], num_pos_examples=0) == (
        "Definition: Is this review positive?\n\n"
        "Now complete the following example -\nInput: What a film!\nOutput: "
    )


def test_empty_input_gets_a_period_like_the_reference():
    t = task(instances=[Instance("i", "", ("x",))], examples=[Example("", "")])
    assert encode(t, t.instances[0]) == (
        "Definition: Say if the review is positive.\n\n"
        " Positive Example 1 -\nInput: .\n Output: .\n\n"
        "Now complete the following example -\nInput: .\nOutput: "
    )


def test_no_definition_and_no_examples():
    t = task(examples=[])
    assert encode(t, t.instances[0], add_definition=False) == "Now complete the following example -\nInput: Loved it.\nOutput: "


def test_examples_dropped_when_too_long():
    long_example = Example(" ".join(["word"] * 50), "positive")
    t = task(examples=[EX1, long_example, EX2])
    tok = WordTokenizer()
    source = encode(t, t.instances[0], tokenizer=tok, max_source_length=40)
    assert "Positive Example 1" in source
    assert "Positive Example 2" not in source
    assert "Is it bad?" not in source  # the first misfit stops the adding, even if a later one fits


def test_fit_check_joins_kept_examples_with_a_space():
    """Reference quirk: the check sees kept examples joined by ' ', the source joins them with ''."""
    calls = []

    class Recorder(WordTokenizer):
        def __call__(self, text):
            calls.append(text)
            return super().__call__(text)

    t = task(examples=[EX1, EX2])
    build_source(t.definition, t.positive_examples, "x", tokenizer=Recorder(), max_source_length=1000)
    ex1 = " Positive Example 1 -\nInput: Great film.\n Output: positive.\n\n"
    ex2 = " Positive Example 2 -\nInput: Is it bad?\n Output: negative.\n\n"
    head = "Definition: Say if the review is positive.\n\n"
    tail = "Now complete the following example -\nInput: x.\nOutput: "
    assert calls[1] == head + ex1 + ex2 + tail  # " ".join([ex1]) == ex1
    calls.clear()
    build_source(t.definition, [EX1, EX2, EX1], "x", tokenizer=Recorder(), max_source_length=1000)
    ex3 = " Positive Example 3 -\nInput: Great film.\n Output: positive.\n\n"
    assert calls[2] == head + ex1 + " " + ex2 + ex3 + tail


def test_truncation_keeps_first_tokens(tiny_causal_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_causal_dir)
    t = task(definition="word " * 300)
    source = encode(t, t.instances[0], tokenizer=tok, max_source_length=20)
    assert len(tok(source)["input_ids"]) <= 20
    assert source.startswith("Definition: word word")
    assert "Now complete" not in source


def test_causal_prompt_and_targets():
    assert model_prompt("Input: x.\nOutput: ", causal=True) == "Input: x.\nOutput:"
    assert model_prompt("Input: x.\nOutput: ", causal=False) == "Input: x.\nOutput: "
    assert training_target(" positive ", causal=True, eos_token="<|im_end|>") == " positive<|im_end|>"
    assert training_target(" positive ", causal=False) == "positive"


def test_chat_template_requires_template():
    from activeit.errors import ConfigError

    class NoTemplate:
        chat_template = None

    with pytest.raises(ConfigError, match="chat template"):
        model_prompt("x", causal=True, tokenizer=NoTemplate(), chat_template=True)


def test_ni_mini_prompt_shape(ni_mini):
    from activeit.tasks import TaskLibrary

    t = TaskLibrary(ni_mini).load("task1344_glue_entailment_classification")
    source = encode(t, t.instances[0])
    assert source.startswith("Definition: In this task, you're given two sentences.")
    assert source.count("Positive Example") == 2
    assert source.endswith("\nOutput: ")
