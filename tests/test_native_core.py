"""The native engine's internals, against the `hf` backend as the oracle: one forward pass per pair and
`model.generate(do_sample=False)` one prompt at a time (tests/test_engine.py holds every backend to it)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from activeit.engine import Generation, TargetScore, Work, get_engine, target_ids
from activeit.engine.native.core import generate, plan_prefix_groups, score
from activeit.models import load_model

from conftest import DEFINITION, INPUTS, engine_prompt, engine_workload

TOL = 1e-4

@pytest.fixture(scope="module")
def tiny_causal(tiny_causal_dir):
    return load_model(str(tiny_causal_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def tiny_seq2seq(tiny_seq2seq_dir):
    return load_model(str(tiny_seq2seq_dir), dtype="float32", device="cpu")


def _naive_ce(lm, prompt: str, target) -> tuple[int, float]:
    """The oracle: the `hf` backend on one pair (one unbatched forward pass)."""
    result = get_engine("hf", lm).score([prompt], [target], batch_size=1)[0]
    return result.n_tokens, result.mean_ce


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
@pytest.mark.parametrize("batch_size,token_budget", [(32, 12_288), (2, 150)])
def test_score_matches_naive_forward(kind, batch_size, token_budget, tiny_causal, tiny_seq2seq):
    lm = tiny_causal if kind == "causal" else tiny_seq2seq
    prompts, targets = engine_workload(lm)
    work = Work()
    got = score(lm, prompts, targets, batch_size=batch_size, token_budget=token_budget, work=work)
    assert len(got) == len(prompts) and all(isinstance(g, TargetScore) for g in got)
    for g, prompt, target in zip(got, prompts, targets):
        n, ce = _naive_ce(lm, prompt, target)
        assert g.n_tokens == n
        assert abs(g.mean_ce - ce) <= TOL
        assert g.p == pytest.approx(torch.exp(torch.tensor(-g.mean_ce)).item(), rel=1e-6)
    if kind == "causal":  # the shared prefix ran once, not once per prompt
        naive_tokens = sum(len(lm.tokenizer(p)["input_ids"]) for p in prompts)
        assert work.tokens < naive_tokens * 0.6


def test_prefix_groups_share_long_prefixes_only():
    a = list(range(100))
    seqs = [a + [1, 2], a + [3], a[:50] + [7] * 20, [5] * 30, a + [1, 2]]
    groups = plan_prefix_groups(seqs)
    assert sorted(i for _, m in groups for i in m) == list(range(5))
    by_member = {i: p for p, m in groups for i in m}
    assert by_member[0] == by_member[1] == by_member[4] >= 99
    assert all(p < len(seqs[i]) for i, p in by_member.items())  # the last token stays outside
    assert by_member[3] == 0


def test_text_target_convention(tiny_causal, tiny_seq2seq):
    tok = tiny_causal.tokenizer
    assert target_ids(tiny_causal, " yes ") == tok(" yes", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    s_tok = tiny_seq2seq.tokenizer
    assert target_ids(tiny_seq2seq, "yes") == s_tok("yes")["input_ids"]
    assert target_ids(tiny_seq2seq, "yes")[-1] == s_tok.eos_token_id


def test_results_in_input_order_and_n_tokens(tiny_causal):
    prompts, targets = engine_workload(tiny_causal)
    forward = score(tiny_causal, prompts, targets)
    backward = score(tiny_causal, prompts[::-1], targets[::-1])
    assert [r.mean_ce for r in backward[::-1]] == pytest.approx([r.mean_ce for r in forward], abs=TOL)
    assert [r.n_tokens for r in forward] == [len(target_ids(tiny_causal, t)) if isinstance(t, str) else len(t)
                                             for t in targets]
    assert score(tiny_causal, ["Input: x\nOutput:"], [[5, 6, 7]])[0].n_tokens == 3


def test_empty_input_and_bad_input(tiny_causal, tiny_seq2seq):
    assert score(tiny_causal, [], []) == [] and score(tiny_seq2seq, [], []) == []
    assert generate(tiny_causal, []) == [] and generate(tiny_seq2seq, []) == []
    with pytest.raises(ValueError):
        score(tiny_causal, ["a"], [])
    with pytest.raises(ValueError):
        score(tiny_causal, ["a"], [[]])


def test_long_shared_prefix_with_small_micro_batches(tiny_causal):
    """A 1,024-token prefix shared by many suffixes, run a few rows at a time."""
    tok = tiny_causal.tokenizer
    words = " ".join(INPUTS * 40)
    prefix_ids = tok(words)["input_ids"][:1024]
    prefix = tok.decode(prefix_ids)
    assert tok(prefix)["input_ids"][:1000] == prefix_ids[:1000]
    prompts = [f"{prefix}\nInput: {INPUTS[i % 5]} {i}\nOutput:" for i in range(40)]
    targets = ["yes" if i % 2 else "no" for i in range(40)]
    work = Work()
    got = score(tiny_causal, prompts, targets, batch_size=4, token_budget=4 * 1100, work=work)
    assert work.forwards >= 10  # 40 suffixes, at most 4 per pass
    assert work.tokens < 3 * 1100
    for i in (0, 17, 39):
        assert abs(got[i].mean_ce - _naive_ce(tiny_causal, prompts[i], targets[i])[1]) <= TOL


def test_bfloat16_runs_and_stays_close(tiny_causal_dir, tiny_causal):
    """bf16 weights, float32 log-softmax: close to float32, not equal."""
    lm16 = load_model(str(tiny_causal_dir), dtype="bfloat16", device="cpu")
    prompts, targets = engine_workload(lm16)
    got = score(lm16, prompts, targets, batch_size=4)
    ref = score(tiny_causal, prompts, targets)
    assert max(abs(g.mean_ce - r.mean_ce) for g, r in zip(got, ref)) < 0.1
    gens = generate(lm16, prompts, max_new_tokens=4, stop_strings=())
    assert all(g.score is not None and len(g.token_ids) <= 4 for g in gens)


def _hf_generate(lm, prompt: str, max_new_tokens: int) -> list[int]:
    """The oracle: `model.generate` on one prompt through the `hf` backend."""
    return get_engine("hf", lm).generate([prompt], max_new_tokens=max_new_tokens, stop_strings=(),
                                         batch_size=1)[0].token_ids


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_generate_matches_hf_generate_one_at_a_time(kind, tiny_causal, tiny_seq2seq):
    lm = tiny_causal if kind == "causal" else tiny_seq2seq
    prompts, _ = engine_workload(lm)
    got = generate(lm, prompts, max_new_tokens=12, stop_strings=(), batch_size=4)
    assert all(isinstance(g, Generation) for g in got)
    eos = lm.tokenizer.eos_token_id
    for g, prompt in zip(got, prompts):
        ref = _hf_generate(lm, prompt, 12)
        assert g.token_ids == ref
        assert g.finish == ("eos" if ref and ref[-1] == eos else "length")
        body = ref[:-1] if g.finish == "eos" else ref
        assert g.text == lm.tokenizer.decode(body, skip_special_tokens=True).strip()
        # the likelihood carried along equals scoring the generated ids
        assert abs(g.score.mean_ce - _naive_ce(lm, prompt, g.token_ids)[1]) <= TOL


@pytest.mark.parametrize("workers,budget", [(1, 12_000), (2, 12_000), (2, 200)])
def test_generate_prefills_in_micro_batches_with_the_same_tokens(workers, budget, tiny_causal):
    """Prompts of a decoding batch are prefilled in length-sorted micro-batches (several when the
    budget is small, side by side with workers) and copied into one cache; the tokens and their
    likelihoods are those of one prompt at a time, and the work is the prompts' tokens, not the
    padding to the longest."""
    lm = tiny_causal
    prompts, _ = engine_workload(lm)
    work = Work()
    got = generate(lm, prompts, max_new_tokens=10, stop_strings=(), token_budget=budget, workers=workers, work=work)
    for g, prompt in zip(got, prompts):
        assert g.token_ids == _hf_generate(lm, prompt, 10)
        assert abs(g.score.mean_ce - _naive_ce(lm, prompt, g.token_ids)[1]) <= TOL
    assert generate(lm, prompts, max_new_tokens=10, stop_strings=(), token_budget=budget, workers=workers) == got
    src = [lm.tokenizer(p)["input_ids"] for p in dict.fromkeys(prompts)]
    decoded = sum(len(g.token_ids) - 1 for g in {tuple(g.token_ids): g for g in got}.values())
    groups = plan_prefix_groups(src)
    prefilled = sum(p + sum(len(src[i]) - p for i in members) for p, members in groups)
    left_padded = sum(p + len(members) * max(len(src[i]) - p for i in members) for p, members in groups)
    assert prefilled + decoded <= work.tokens < left_padded + decoded


def test_a_decoding_batch_holds_prompts_with_different_prefixes(tiny_causal, monkeypatch):
    """Evaluation generates for many tasks at once: their prompts decode together, not task by task."""
    import activeit.engine.native.core as likelihood

    seen = []
    real = likelihood._prefill_aligned

    def spy(lm, body, head, prefixes, *args):
        seen.append(len({id(kv) for _, kv in prefixes}))
        return real(lm, body, head, prefixes, *args)

    monkeypatch.setattr(likelihood, "_prefill_aligned", spy)
    prompts, _ = engine_workload(tiny_causal)
    got = generate(tiny_causal, prompts, max_new_tokens=6, stop_strings=())
    assert seen == [3]  # the shared definition, the perturbed one, and prompts without a shared prefix
    assert [g.token_ids for g in got] == [_hf_generate(tiny_causal, p, 6) for p in prompts]


@pytest.mark.parametrize("fallback", ["left_padded", "full_logits", "both"])
def test_generate_fallbacks_give_the_same_tokens(fallback, tiny_causal, monkeypatch):
    """Models whose caches cannot be re-laid (sliding windows) prefill left-padded; models whose
    logits are not a plain projection of the last hidden state compute logits in the model."""
    import activeit.engine.native.core as likelihood

    lm = tiny_causal
    prompts, _ = engine_workload(lm)
    want = generate(lm, prompts, max_new_tokens=8, stop_strings=())
    if fallback in ("left_padded", "both"):
        monkeypatch.setattr(likelihood, "_prefix_reusable", lambda model: False)
    if fallback in ("full_logits", "both"):
        monkeypatch.setattr(likelihood, "hidden_and_head", lambda model: (None, None))
    got = generate(lm, prompts, max_new_tokens=8, stop_strings=(), batch_size=3)
    assert [g.token_ids for g in got] == [w.token_ids for w in want]
    assert [g.score.mean_ce for g in got] == pytest.approx([w.score.mean_ce for w in want], abs=TOL)


def test_generate_stops_at_stop_strings(tiny_causal):
    lm = tiny_causal
    prompts, _ = engine_workload(lm)
    free = generate(lm, prompts, max_new_tokens=12, stop_strings=())
    # make a stop string of a token that some row generates in the middle
    mid = next(g for g in free if len(g.token_ids) >= 4 and g.finish == "length")
    stop_token = mid.token_ids[2]
    stop_text = lm.tokenizer.decode([stop_token])
    assert stop_text
    got = generate(lm, prompts, max_new_tokens=12, stop_strings=(stop_text,))
    for g, f in zip(got, free):
        hits = [k for k, t in enumerate(f.token_ids) if stop_text in lm.tokenizer.decode([t])]
        first_eos = f.token_ids.index(lm.tokenizer.eos_token_id) if f.finish == "eos" else len(f.token_ids)
        if hits and hits[0] < first_eos:
            assert g.finish == "stop" and g.token_ids == f.token_ids[:hits[0] + 1]
            text = lm.tokenizer.decode(f.token_ids[:hits[0]], skip_special_tokens=True)
            assert g.text == text.split(stop_text)[0].strip()
        else:
            assert g.token_ids == f.token_ids and g.finish == f.finish


def test_first_token_stop_gives_empty_text(tiny_causal):
    lm = tiny_causal
    prompts, _ = engine_workload(lm)
    free = generate(lm, prompts[:1], max_new_tokens=5, stop_strings=())[0]
    first = lm.tokenizer.decode([free.token_ids[0]])
    got = generate(lm, prompts[:1], max_new_tokens=5, stop_strings=(first,))[0]
    assert got.text == "" and got.token_ids == free.token_ids[:1] and got.finish == "stop"


def test_generate_length_limit(tiny_causal):
    got = generate(tiny_causal, ["Input: x\nOutput:"], max_new_tokens=3, stop_strings=())[0]
    assert got.finish in ("length", "eos") and len(got.token_ids) <= 3
    if got.finish == "length":
        assert len(got.token_ids) == 3


# --------------------------------------------------------------------------- SmolLM2


def _ni_prompts(ni_mini, n_inst=2):
    """Original and two perturbed prompts of a real task (shared prefixes of ~100 tokens)."""
    from activeit.perturb import perturbations
    from activeit.prompts import build_source, model_prompt
    from activeit.tasks import TaskLibrary

    task = TaskLibrary(ni_mini).load("task363_sst2_polarity_classification")
    return [model_prompt(build_source(v.definition, v.examples, inst.input), causal=True)
            for v in perturbations(task, k=2, rate=0.2, target="both", seed=1) for inst in task.instances[:n_inst]]


@pytest.mark.slow
def test_smollm2_score_and_generate_match_naive(smollm2, ni_mini):
    prompts = _ni_prompts(ni_mini)
    gens = generate(smollm2, prompts[:2], max_new_tokens=6)
    for g, p in zip(gens, prompts[:2]):
        assert g.token_ids == _hf_generate(smollm2, p, len(g.token_ids))
    targets: list = [gens[i % 2].token_ids for i in range(len(prompts))]
    targets[3] = "positive"
    got = score(smollm2, prompts, targets, batch_size=4)
    for i in (0, 3, len(prompts) - 1):
        n, ce = _naive_ce(smollm2, prompts[i], targets[i])
        assert got[i].n_tokens == n and abs(got[i].mean_ce - ce) <= TOL
    assert abs(gens[0].score.mean_ce - got[0].mean_ce) <= TOL


def test_target_ce_in_blocks_equals_full_cross_entropy(monkeypatch):
    import activeit.engine.native.core as likelihood

    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden, labels = torch.randn(37, 16), torch.randint(0, 50, (37,))
    full = F.cross_entropy(head(hidden), labels, reduction="none")
    monkeypatch.setattr(likelihood, "LOGIT_BLOCK_BYTES", 4 * 50 * 3)  # blocks of 8 rows (the floor), 5 blocks
    assert torch.allclose(likelihood.target_ce(head, hidden, labels), full, atol=1e-6)
    monkeypatch.setattr(likelihood, "LOGIT_BLOCK_BYTES", 1 << 30)  # one block
    assert torch.allclose(likelihood.target_ce(head, hidden, labels), full, atol=1e-6)


@pytest.mark.parametrize("workers,budget", [(2, 300), (3, 12_000)])
def test_workers_give_the_numbers_of_one(workers, budget, tiny_causal):
    """Prefix passes and micro-batches run side by side: same scores, same work, in input order.
    Micro-batches running at once share the token budget, so one worker with a share of it cuts
    the same micro-batches."""
    prompts, targets = engine_workload(tiny_causal)
    prompts, targets = prompts * 3, targets * 3
    one, many = Work(), Work()
    ref = score(tiny_causal, prompts, targets, batch_size=2, token_budget=budget // workers, workers=1, work=one)
    threads = torch.get_num_threads()
    got = score(tiny_causal, prompts, targets, batch_size=2, token_budget=budget, workers=workers, work=many)
    assert torch.get_num_threads() == threads
    assert [g.n_tokens for g in got] == [r.n_tokens for r in ref]
    assert [g.mean_ce for g in got] == pytest.approx([r.mean_ce for r in ref], abs=1e-5)
    assert (many.tokens, many.logit_rows, many.forwards) == (one.tokens, one.logit_rows, one.forwards)
    assert score(tiny_causal, prompts, targets, batch_size=2, token_budget=budget, workers=workers) == got


def test_models_with_dynamic_rope_score_on_one_worker(tiny_causal, monkeypatch):
    """Dynamic RoPE rewrites its frequencies inside forward: no concurrent passes on such a model."""
    import activeit.engine.native.core as likelihood

    seen = []
    real = likelihood.worker_pool
    monkeypatch.setattr(likelihood, "worker_pool", lambda n, device: seen.append(n) or real(n, device))
    prompts, targets = engine_workload(tiny_causal)
    score(tiny_causal, prompts, targets, workers=2)
    rope = next(m for m in tiny_causal.model.modules() if hasattr(m, "rope_type"))
    monkeypatch.setattr(rope, "rope_type", "dynamic")
    score(tiny_causal, prompts, targets, workers=2)
    assert seen == [2, 1]


def test_caches_are_filled(tiny_causal):
    """The cache keyword differs across transformers releases; the wrong one leaves the cache empty
    without an error, so check the prefix pass and a forward call after it really fill theirs."""
    import activeit.engine.native.core as native

    lm = tiny_causal
    ids = lm.tokenizer(engine_prompt(DEFINITION, INPUTS[0]))["input_ids"]
    prefix, row = ids[:20], ids[20:]
    with torch.inference_mode():
        kv = native._run_prefix(lm.model, prefix, None)
        assert len(kv) == lm.model.config.num_hidden_layers and kv[0][0].shape[-2] == len(prefix)
        kw = native._after_prefixes(lm, [(len(prefix), kv)], [row], keep_cache=True)
        lm.model.base_model(**kw)
    assert kw[native.CACHE].get_seq_length() == len(prefix) + len(row)
