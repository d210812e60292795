import numpy as np
import pytest

from activeit.errors import ConfigError
from activeit.perturb import drop_words, mask_tokens_for, perturbations
from activeit.tasks import Example, Instance, Task


def make_task(name="task1_x"):
    return Task(
        name=name,
        definition="Read the sentence and answer with yes or no depending on whether it is a question",
        positive_examples=[Example("is this a question", "yes"), Example("this is a statement", "no"),
                           Example("third example input", "no")],
        negative_examples=[],
        categories=["Misc"],
        instances=[Instance("a", "x", ("yes",))],
        kind="cls",
    )


def test_drop_words_rate_extremes():
    rng = np.random.default_rng(0)
    assert drop_words("a  b\nc", 0.0, rng) == "a b c"
    assert drop_words("a b c", 1.0, rng) == ""
    assert drop_words("", 0.5, rng) == ""


def test_drop_rate_is_respected_on_average():
    rng = np.random.default_rng(1)
    text = " ".join(f"w{i}" for i in range(20000))
    kept = len(drop_words(text, 0.2, rng).split())
    assert abs(kept / 20000 - 0.8) < 0.01


def test_mask_replaces_in_order():
    from activeit.perturb import _Masks

    rng = np.random.default_rng(3)
    out = drop_words("one two three four five six", 0.5, rng, _Masks(["<extra_id_0>", "<extra_id_1>", "<extra_id_2>", "<extra_id_3>"]))
    masks = [w for w in out.split() if w.startswith("<extra_id_")]
    assert masks == [f"<extra_id_{i}>" for i in range(len(masks))]
    assert len(out.split()) == 6


def test_variant_zero_is_identity_and_k_variants():
    t = make_task()
    variants = perturbations(t, k=10, rate=0.2, target="both", seed=7)
    assert len(variants) == 11
    assert variants[0].definition == t.definition
    assert variants[0].examples == tuple(t.positive_examples[:2])
    assert [v.index for v in variants] == list(range(11))
    assert any(v.definition != t.definition for v in variants[1:])


def test_both_perturbs_example_inputs_never_outputs():
    t = make_task()
    for v in perturbations(t, k=20, rate=0.5, target="both", seed=1)[1:]:
        assert [e.output for e in v.examples] == ["yes", "no"]
    changed = [v for v in perturbations(t, k=20, rate=0.5, target="both", seed=1)[1:]
               if [e.input for e in v.examples] != ["is this a question", "this is a statement"]]
    assert changed


def test_definition_target_leaves_examples():
    t = make_task()
    for v in perturbations(t, k=5, rate=0.5, target="definition", seed=1):
        assert v.examples == tuple(t.positive_examples[:2])


def test_examples_target_redraws_demonstrations():
    t = make_task()
    extra = [Example("extra one", "yes"), Example("extra two", "no")]
    variants = perturbations(t, k=10, rate=0.2, target="examples", seed=3, extra_examples=extra)
    pool = set(t.positive_examples) | set(extra)
    for v in variants[1:]:
        assert v.definition == t.definition
        assert len(v.examples) == 2 and len(set(v.examples)) == 2
        assert set(v.examples) <= pool
    assert len({v.examples for v in variants[1:]}) > 1


def test_deterministic_from_seed_task_and_index():
    a = perturbations(make_task("task1_x"), k=5, rate=0.3, seed=11)
    b = perturbations(make_task("task1_x"), k=5, rate=0.3, seed=11)
    c = perturbations(make_task("task1_x"), k=5, rate=0.3, seed=12)
    d = perturbations(make_task("task2_y"), k=5, rate=0.3, seed=11)
    assert a == b
    assert a != c and a[1:] != d[1:]
    # variant k does not depend on how many variants were asked for
    assert perturbations(make_task("task1_x"), k=2, rate=0.3, seed=11) == a[:3]


def test_fewer_examples_than_requested():
    t = make_task()
    t.positive_examples = t.positive_examples[:1]
    variants = perturbations(t, k=3, rate=0.2, target="both", seed=0, num_pos_examples=2)
    assert all(len(v.examples) == 1 for v in variants)


def test_bad_options():
    with pytest.raises(ConfigError, match="scoring.target"):
        perturbations(make_task(), k=1, rate=0.2, target="instruction")
    with pytest.raises(ConfigError, match="drop_rate"):
        perturbations(make_task(), k=1, rate=1.5)


class FakeTokenizer:
    def __init__(self, vocab, mask_token=None, unk_token=None):
        self.vocab, self.mask_token, self.unk_token = vocab, mask_token, unk_token

    def get_vocab(self):
        return self.vocab


def test_mask_tokens_for(tiny_seq2seq_dir):
    from transformers import AutoTokenizer

    assert mask_tokens_for(AutoTokenizer.from_pretrained(tiny_seq2seq_dir))[:2] == ["<extra_id_0>", "<extra_id_1>"]
    assert mask_tokens_for(FakeTokenizer({"[MASK]": 4}, mask_token="[MASK]", unk_token="[UNK]")) == ["[MASK]"]
    assert mask_tokens_for(FakeTokenizer({}, unk_token="<|endoftext|>")) == ["<|endoftext|>"]
    with pytest.raises(ConfigError, match="no mask"):
        mask_tokens_for(FakeTokenizer({}))


SENTINELS = [f"<extra_id_{i}>" for i in range(100)]


def _sentinels(text):
    return [w for w in text.split() if w.startswith("<extra_id_")]


def test_mask_numbering_restarts_in_every_perturbed_text():
    # reference ni_dataset.random_drop_word: mask_id = 0 at the start of every call (definition, each example input)
    t = make_task()
    for v in perturbations(t, k=20, rate=0.5, target="both", seed=2, mask_tokens=SENTINELS)[1:]:
        for text in [v.definition] + [e.input for e in v.examples]:
            masks = _sentinels(text)
            assert masks == SENTINELS[:len(masks)]
    runs_on = perturbations(t, k=20, rate=0.5, target="both", seed=2, mask_tokens=SENTINELS, mask_numbering="per_prompt")
    seen = False
    for v in runs_on[1:]:
        masks = _sentinels(" ".join([v.definition] + [e.input for e in v.examples]))
        assert masks == SENTINELS[:len(masks)]
        seen |= bool(_sentinels(v.examples[0].input)) and bool(_sentinels(v.definition))
    assert seen  # some example input continued the definition's numbering


def test_too_few_positive_examples_are_padded_with_unscored_instances():
    # reference ni_dataset: "Positive Examples" += up to 20 unused instances; the collator shows the first 2
    t = make_task()
    t.positive_examples = t.positive_examples[:1]
    extra = [Example("extra one", "yes"), Example("extra two", "no")]
    for target in ("both", "definition"):
        variants = perturbations(t, k=3, rate=0.0, target=target, seed=0, extra_examples=extra)
        assert all(v.examples == (t.positive_examples[0], extra[0]) for v in variants)
    unpadded = perturbations(t, k=3, rate=0.0, target="both", seed=0, extra_examples=extra, pad_examples=False)
    assert all(v.examples == (t.positive_examples[0],) for v in unpadded)
    # a task with enough positive examples shows its own
    full = make_task()
    assert perturbations(full, k=1, rate=0.0, seed=0, extra_examples=extra)[0].examples == tuple(full.positive_examples[:2])


def test_examples_target_redraws_prompt_zero_too():
    # reference ni_dataset (TE): random.sample(Positive Examples, 2) for every pid, pid 0 included
    t = make_task()
    extra = [Example(f"extra {i}", "yes") for i in range(6)]
    firsts = {perturbations(t, k=1, rate=0.2, target="examples", seed=s, extra_examples=extra)[0].examples
              for s in range(10)}
    assert len(firsts) > 1 and firsts != {tuple(t.positive_examples[:2])}
    kept = perturbations(t, k=3, rate=0.2, target="examples", seed=1, extra_examples=extra, resample_original=False)
    assert kept[0].examples == tuple(t.positive_examples[:2])


def test_round_index_redraws_perturbations_deterministically():
    t = make_task()
    r1 = perturbations(t, k=5, rate=0.4, seed=11, round_index=1)
    assert r1 == perturbations(t, k=5, rate=0.4, seed=11, round_index=1)
    assert r1[1:] != perturbations(t, k=5, rate=0.4, seed=11, round_index=2)[1:]
    assert r1[0] == perturbations(t, k=5, rate=0.4, seed=11, round_index=2)[0]
    # without a round the draws are the per-task ones of every round
    assert perturbations(t, k=5, rate=0.4, seed=11) != r1


def one_instance_task(definition="Say the word", text="the quick brown fox"):
    return Task(name="pool-abc", definition=definition, positive_examples=[], negative_examples=[], categories=[],
                instances=[Instance("pool-abc-0", text, ("fox",))], kind="gen")


def _identical_share(variants, task):
    return sum(v.definition == task.definition and v.input_of(task.instances[0]) == task.instances[0].input
               for v in variants[1:]) / (len(variants) - 1)


def test_three_word_instruction_is_often_left_whole_and_redraws_fix_it():
    """P(no word of 3 dropped at rate 0.2) = 0.8^3 = 0.512; each redraw multiplies the share by 0.512 again."""
    t = one_instance_task()
    k = 2000
    plain = perturbations(t, k=k, rate=0.2, target="definition", seed=3)
    assert abs(_identical_share(plain, t) - 0.512) < 0.035
    once = perturbations(t, k=k, rate=0.2, target="definition", seed=3, redraw_identical=1)
    assert abs(_identical_share(once, t) - 0.512 ** 2) < 0.035
    thrice = perturbations(t, k=k, rate=0.2, target="definition", seed=3, redraw_identical=3)
    assert abs(_identical_share(thrice, t) - 0.512 ** 4) < 0.02
    assert thrice == perturbations(t, k=k, rate=0.2, target="definition", seed=3, redraw_identical=3)
    # a draw that already changed the text is kept: attempt 0 is the reference's draw
    for a, b in zip(plain[1:], thrice[1:]):
        if a.definition != t.definition:
            assert b == a and b.attempt == 0
        else:
            assert b.attempt > 0 or b.definition == t.definition
    assert perturbations(t, k=5, rate=0.0, target="definition", seed=3, redraw_identical=2)[1].attempt == 2


def test_redraw_of_examples_target():
    t = make_task()
    variants = perturbations(t, k=200, rate=0.2, target="examples", seed=1, redraw_identical=5)
    assert sum(v.examples == variants[0].examples for v in variants[1:]) < 3


def test_perturb_input_drops_words_of_each_scored_input():
    t = one_instance_task()
    inst = t.instances[0]
    plain = perturbations(t, k=50, rate=0.5, target="definition", seed=2)
    with_input = perturbations(t, k=50, rate=0.5, target="definition", seed=2, instances=t.instances)
    assert with_input[0].input_of(inst) == inst.input
    assert [v.definition for v in with_input] == [v.definition for v in plain]
    assert {v.input_of(inst) for v in with_input[1:]} - {inst.input}
    for v in with_input[1:]:
        assert set(v.input_of(inst).split()) <= set(inst.input.split())
    assert all(v.input_of(inst) == inst.input for v in plain)
    # redrawn only when definition and input are both left whole: P = 0.5^3 * 0.5^4
    redrawn = perturbations(t, k=400, rate=0.5, target="definition", seed=2, instances=t.instances, redraw_identical=1)
    first = perturbations(t, k=400, rate=0.5, target="definition", seed=2, instances=t.instances)
    for a, b in zip(first[1:], redrawn[1:]):
        assert (b.attempt == 1) == (a.definition == t.definition and a.input_of(inst) == inst.input)
