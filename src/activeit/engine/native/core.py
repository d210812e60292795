"""Target likelihoods and greedy generation, the two things every score is made of (docs/semantics.md).

`score` gives the length-normalised probability of target texts (or token ids) given prompts;
`generate` gives greedy outputs. Both batch by length, and for causal models compute the KV
cache of a prefix shared by many prompts (definition + examples) once, running only the rest.

Written against the transformers 5.x cache API (`DynamicCache` built from per-layer key/value
tensors, `Cache.batch_select_indices`); the cache keyword is `cache` from 5.24 and
`past_key_values` before, and `CACHE` holds the one this transformers uses.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutputWithPast

from activeit.engine.base import (Finish, Generation, StopTokens, Target, TargetScore, Work, generation_text, inference,
                                  progress_bar)
from activeit.engine.base import eos_ids as _eos_ids
from activeit.engine.base import pad_id as _pad_id
from activeit.engine.base import prompt_ids as _prompt_ids
from activeit.engine.base import score_ids
from activeit.engine.native.packing import packed_linears
from activeit.engine.native.workers import SERIAL, Workers, worker_pool
from activeit.models import LoadedModel, hidden_and_head


CACHE = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"
"""The forward keyword and output field of the KV cache (renamed in transformers 5.24). Passing
the other name is not an error there: the cache would silently stay empty."""

DEFAULT_TOKEN_BUDGET = 8_192
"""Padded context tokens a micro-batch may hold: rows × (shared prefix + longest row)."""
MIN_PREFIX = 16
"""Shorter shared prefixes are not worth a separate prefix pass."""
_GROUP_OVERHEAD = 32
"""Cost of one extra prefix pass, in tokens, when deciding how to group prompts."""
_BATCH_OVERHEAD = 32
"""Cost of one extra forward pass, in tokens, when deciding how to cut micro-batches."""
_MAX_GROUP_SPAN = 256
"""Prompts looked back over when grouping (bounds the planner at O(n·256))."""
LOGIT_BLOCK_BYTES = 16 << 20
"""Largest float32 logit block `target_ce` materialises (below glibc's 32 MB mmap threshold)."""


# --------------------------------------------------------------------------- model pieces


def _prefix_reusable(model: Any) -> bool:
    """Prefix KV reuse is exact for plain full-attention dynamic caches (not sliding windows etc.)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    layers = DynamicCache(config=model.config).layers
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _forward_is_stateless(model: Any) -> bool:
    """Whether concurrent forward calls are safe: dynamic and long-context RoPE variants rewrite their
    frequencies inside `forward` from the current sequence length, so two threads would race on them."""
    for module in model.modules():
        kind = getattr(module, "rope_type", None)
        kinds = kind.values() if isinstance(kind, dict) else [kind]
        if any(isinstance(k, str) and ("dynamic" in k or k == "longrope") for k in kinds):
            return False
    return True


def _engine_pool(lm: LoadedModel, workers: int | None):
    """The workers of one engine call: as asked, but one for models whose forward is not stateless."""
    return worker_pool(workers if _forward_is_stateless(lm.model) else 1, lm.model.device)


KV = list[tuple[torch.Tensor, torch.Tensor]]


def _run_prefix(model: Any, prefix: list[int], work: Work | None) -> KV:
    """Run a shared prefix once (batch 1) and keep its per-layer keys and values."""
    ids = torch.tensor([prefix], device=model.device)
    out = model.base_model(input_ids=ids, use_cache=True)
    _count(work, len(prefix), 0)
    return [(layer.keys, layer.values) for layer in getattr(out, CACHE).layers]


def _expand_cache(model: Any, kv: KV | None, rows: int):
    """A fresh cache holding the prefix for `rows` sequences (forward calls mutate caches in place)."""
    from transformers import DynamicCache

    if kv is None:
        return None
    return DynamicCache([(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv], config=model.config)


_count_lock = threading.Lock()


def _count(work: Work | None, tokens: int, logit_rows: int) -> None:
    if work is not None:
        with _count_lock:  # engine workers count from several threads
            work.tokens += tokens
            work.logit_rows += logit_rows
            work.forwards += 1


# --------------------------------------------------------------------------- grouping and batching


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_prefix_groups(seqs: Sequence[Sequence[int]], *, min_prefix: int = MIN_PREFIX) -> list[tuple[int, list[int]]]:
    """Group token sequences by a shared prefix: `[(prefix_len, member indices), ...]`.

    Each member keeps at least its last token outside the prefix (its logits are needed).
    Sequences sharing a prefix are neighbours in sorted order; a dynamic programme over each
    run of neighbours picks the split that runs the fewest tokens. Members with no useful
    shared prefix come back in one group with prefix_len 0.
    """
    n = len(seqs)
    order = sorted(range(n), key=lambda i: seqs[i])
    lcps = [_lcp(seqs[order[j]], seqs[order[j + 1]]) for j in range(n - 1)]
    groups: list[tuple[int, list[int]]] = []
    loose: list[int] = []
    start = 0
    for j in range(n):
        if j == n - 1 or lcps[j] < min_prefix:
            for prefix_len, members in _split_run(order[start:j + 1], lcps[start:j], seqs, min_prefix):
                if prefix_len:
                    groups.append((prefix_len, members))
                else:
                    loose.extend(members)
            start = j + 1
    if loose:
        groups.append((0, sorted(loose)))
    return groups


def _split_run(run: list[int], lcps: list[int], seqs: Sequence[Sequence[int]], min_prefix: int):
    """Best split of neighbours into groups: cost = prefix once + the rest of every member."""
    m = len(run)
    lengths = [len(seqs[i]) for i in run]
    best = [0.0] + [math.inf] * m
    cut: list[tuple[int, int]] = [(0, 0)] * (m + 1)
    for j in range(1, m + 1):
        best[j], cut[j] = best[j - 1] + lengths[j - 1], (j - 1, 0)  # alone, no prefix
        shared, shortest, total = math.inf, lengths[j - 1], lengths[j - 1]
        for i in range(j - 2, max(-1, j - 1 - _MAX_GROUP_SPAN), -1):
            shared = min(shared, lcps[i])
            shortest = min(shortest, lengths[i])
            total += lengths[i]
            prefix = min(shared, shortest - 1)
            if prefix < min_prefix:
                break
            cost = best[i] + _GROUP_OVERHEAD + total - (j - i - 1) * prefix
            if cost < best[j]:
                best[j], cut[j] = cost, (i, prefix)
    groups = []
    j = m
    while j > 0:
        i, prefix = cut[j]
        groups.append((prefix, run[i:j]))
        j = i
    return groups[::-1]


def _micro_batches(items: list[int], lengths: Mapping[int, int] | Sequence[int], *, context: int, batch_size: int,
                   token_budget: int, overhead: float = _BATCH_OVERHEAD) -> list[list[int]]:
    """Split items into batches of ≤ batch_size rows and ≤ token_budget of rows × (context + longest),
    running the fewest padded tokens plus `overhead` per batch (a dynamic programme over the items
    sorted by length). Generation passes a huge overhead: its batches cost decoding steps, not padding."""
    order = sorted(items, key=lambda i: -lengths[i])
    n = len(order)
    best = [0] + [math.inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, max(-1, j - 1 - batch_size), -1):
            width = lengths[order[i]]  # the longest of order[i:j]
            if i < j - 1 and (j - i) * (context + width) > token_budget:
                break
            cost = best[i] + (j - i) * width + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches = []
    j = n
    while j > 0:
        batches.append(order[cut[j]:j])
        j = cut[j]
    return batches[::-1]


@contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """`base.inference` plus packed linear weights (`packing`) for the duration of a call."""
    with inference(model), packed_linears(model):
        yield


# --------------------------------------------------------------------------- scoring


def score(
    lm: LoadedModel,
    prompts: Sequence[str],
    targets: Sequence[Target],
    *,
    batch_size: int = 32,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    progress: bool = False,
    work: Work | None = None,
    workers: int | None = None,
) -> list[TargetScore]:
    """Length-normalised likelihood of each target given its prompt, in input order.

    Args:
        lm: the model (causal or seq2seq).
        prompts: prompt texts, fed as given (causal callers strip trailing whitespace).
        targets: a text (tokenized with `target_ids`) or exact token ids (e.g. a generation's
            `token_ids`), one per prompt.
        batch_size: most rows in a forward pass.
        token_budget: most padded context tokens in a forward pass, rows × (prefix + longest row);
            bounds the KV memory when a long prefix is shared by many prompts.
        progress: show a progress bar.
        work: filled with what was run (tokens, head rows, forward calls).
        workers: threads running prefix passes and micro-batches side by side (causal models on
            CPU; None: `workers.default_workers`, 2 on a multi-core CPU; always 1 for
            models whose forward changes their own state). Results do not depend on which worker
            runs what.

    Returns:
        One `TargetScore(n_tokens, mean_ce, p)` per pair: p = exp(-mean token cross-entropy).
    """
    src, tgt = score_ids(lm, prompts, targets)
    if not src:
        return []
    with _eval_mode(lm.model), progress_bar(len(src), progress, "scoring") as bar:
        if lm.causal:
            with _engine_pool(lm, workers) as pool:
                sums = _score_causal(lm, src, tgt, batch_size, token_budget, bar, work, pool)
        else:
            sums = _score_seq2seq(lm, src, tgt, batch_size, token_budget, bar, work)
    return [TargetScore.from_sum(s, len(t)) for s, t in zip(sums, tgt)]


def _score_causal(lm, src, tgt, batch_size, token_budget, bar, work, pool: Workers = SERIAL) -> list[float]:
    """Prefixes of a window of groups run once each; then all their rows, sorted by length, in
    micro-batches that may mix groups (the same instance under K perturbed prompts has the same
    row length, so this is what removes the padding). The pool's workers run the prefix passes,
    then the micro-batches, of a window side by side (`workers`); micro-batches running
    at once share the token budget, so the memory they hold does not grow with the workers."""
    body, head = hidden_and_head(lm.model)
    sums = [0.0] * len(src)
    for prefix_of in _prefix_windows(lm.model, src, token_budget, work, pool):
        # each row: rest of the prompt + all target tokens but the last (whose output is not needed)
        rows = {i: src[i][p:] + tgt[i][:-1] for i, (p, _) in prefix_of.items()}
        lengths = {i: len(r) for i, r in rows.items()}

        def run(batch: list[int]) -> list[float]:
            starts = [len(src[i]) - prefix_of[i][0] - 1 for i in batch]  # position predicting target[0]
            return _suffix_ce(lm, body, head, [prefix_of[i] for i in batch], [rows[i] for i in batch], starts,
                              [tgt[i] for i in batch], work)

        batches = _micro_batches(list(rows), lengths, context=max(p for p, _ in prefix_of.values()),
                                 batch_size=batch_size, token_budget=token_budget // pool.n)
        for batch, ce in zip(batches, pool.map(run, batches)):
            for i, s in zip(batch, ce):
                sums[i] = s
            bar.update(len(batch))
        del prefix_of
    return sums


def _prefix_windows(model: Any, seqs: list[list[int]], token_budget: int, work: Work | None,
                    pool: Workers) -> Iterator[dict[int, tuple[int, KV | None]]]:
    """Per window of prefix groups (`_windows`): each member's (shared prefix length, cached prefix
    keys/values or None), every prefix run once, side by side on the pool. Models whose caches are
    not plain per-position keys/values get one window of all sequences without a prefix."""
    groups = plan_prefix_groups(seqs) if _prefix_reusable(model) else [(0, list(range(len(seqs))))]
    for window in _windows(groups, token_budget):
        kvs = pool.map(lambda g: _run_prefix(model, seqs[g[1][0]][:g[0]], work) if g[0] else None, window)
        yield {i: (p, kv) for (p, members), kv in zip(window, kvs) for i in members}


def _windows(groups: list[tuple[int, list[int]]], token_budget: int) -> Iterator[list[tuple[int, list[int]]]]:
    """Consecutive groups whose prefixes together fit the token budget (their caches are held at once)."""
    window: list[tuple[int, list[int]]] = []
    held = 0
    for group in groups:
        if window and held + group[0] > token_budget:
            yield window
            window, held = [], 0
        window.append(group)
        held += group[0]
    if window:
        yield window


def _batch_cache(model: Any, prefixes: list[tuple[int, KV | None]], rows: int):
    """A fresh cache with each row's prefix, right-aligned (a cache is mutated by the forward call).

    Returns (cache or None, longest prefix, 2D mask or None): rows with a shorter prefix get
    masked-out zero slots in front of it; one prefix shared by all rows needs no mask.
    """
    from transformers import DynamicCache

    longest = max(p for p, _ in prefixes)
    if longest == 0:
        return None, 0, None
    first = prefixes[0][1]
    if all(kv is first for _, kv in prefixes):
        return _expand_cache(model, first, rows), longest, None
    layers = []
    template = next(kv for _, kv in prefixes if kv is not None)
    for layer, (k0, v0) in enumerate(template):
        keys = k0.new_zeros((rows, k0.shape[1], longest, k0.shape[3]))
        values = v0.new_zeros((rows, v0.shape[1], longest, v0.shape[3]))
        for b, (p, kv) in enumerate(prefixes):
            if p:
                keys[b, :, longest - p:] = kv[layer][0][0]
                values[b, :, longest - p:] = kv[layer][1][0]
        layers.append((keys, values))
    mask = torch.ones((rows, longest), dtype=torch.long, device=template[0][0].device)
    for b, (p, _) in enumerate(prefixes):
        mask[b, :longest - p] = 0
    return DynamicCache(layers, config=model.config), longest, mask


def _after_prefixes(lm, prefixes, rows, *, keep_cache: bool = False) -> dict[str, Any]:
    """Forward-call keywords for right-padded rows after their cached prefixes (fresh caches: a forward
    call mutates its cache). Right padding + causal attention: no real position ever sees a pad, so
    only the prefix slots in front of shorter prefixes are masked. `keep_cache`: a cache even without
    a prefix, for the caller to read the rows' keys and values from."""
    from transformers import DynamicCache

    model = lm.model
    n, width = len(rows), max(len(r) for r in rows)
    dev = model.device
    ids = torch.full((n, width), _pad_id(lm), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.tensor(r)
    pos = torch.tensor([p for p, _ in prefixes])[:, None] + torch.arange(width)[None]
    cache, _, mask = _batch_cache(model, prefixes, n)
    if mask is not None:
        mask = torch.cat([mask, mask.new_ones((n, width))], dim=1)
    if cache is None and keep_cache:
        cache = DynamicCache(config=model.config)
    return {"input_ids": ids.to(dev), "position_ids": pos.to(dev), "attention_mask": mask, CACHE: cache,
            "use_cache": cache is not None}


def _suffix_ce(lm, body, head, prefixes, rows, starts, targets, work) -> list[float]:
    """Run right-padded rows after their cached prefixes; summed target CE per row (float32 softmax)."""
    model = lm.model
    n, width = len(rows), max(len(r) for r in rows)
    dev = model.device
    kw = _after_prefixes(lm, prefixes, rows)
    sel_b = torch.cat([torch.full((len(t),), b) for b, t in enumerate(targets)]).to(dev)
    sel_j = torch.cat([torch.arange(s, s + len(t)) for s, t in zip(starts, targets)]).to(dev)
    labels = torch.tensor([x for t in targets for x in t], device=dev)
    if body is not None:
        ce = target_ce(head, body(**kw)[sel_b, sel_j], labels)
        _count(work, n * width, len(labels))
    else:  # logits only from the first position any row needs
        first = min(starts)
        logits = model(**kw, logits_to_keep=slice(first, None)).logits[sel_b, sel_j - first]
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
        _count(work, n * width, n * (width - first))
    return torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, sel_b, ce.double()).tolist()


def target_ce(head: Any, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (float32 log-softmax) of `labels` under `head(hidden)`, a block of rows at a time.

    All target rows at once would be a (targets × vocabulary) float32 array of hundreds of MB,
    freshly mapped and page-faulted on every call; blocks of ≤ LOGIT_BLOCK_BYTES stay in the
    allocator's reused memory instead of being page-faulted in again.
    """
    vocab = head.weight.shape[0] if hasattr(head, "weight") else head(hidden[:1]).shape[-1]
    step = max(8, LOGIT_BLOCK_BYTES // (4 * vocab))
    out = torch.empty(len(labels), dtype=torch.float32, device=hidden.device)
    for i in range(0, len(labels), step):
        out[i:i + step] = F.cross_entropy(head(hidden[i:i + step]).float(), labels[i:i + step], reduction="none")
    return out


def _encode_sources(model: Any, sources: list[list[int]], pad: int):
    """Encoder states for a padded batch of sources, and the padding mask."""
    width = max(len(s) for s in sources)
    ids = torch.full((len(sources), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sources), width), dtype=torch.long)
    for b, s in enumerate(sources):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    ids, mask = ids.to(model.device), mask.to(model.device)
    return model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state, mask


def _source_chunks(src, batch_size, token_budget, overhead: float = _BATCH_OVERHEAD,
                   ) -> Iterator[tuple[list[tuple[int, ...]], dict[tuple[int, ...], list[int]]]]:
    """Unique sources in length-sorted chunks, with the items that use each source."""
    users: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(src):
        users.setdefault(tuple(s), []).append(i)
    unique = list(users)
    for chunk in _micro_batches(list(range(len(unique))), [len(u) for u in unique], context=0,
                                batch_size=batch_size, token_budget=token_budget, overhead=overhead):
        keys = [unique[k] for k in chunk]
        yield keys, {k: users[k] for k in keys}


def _score_seq2seq(lm, src, tgt, batch_size, token_budget, bar, work) -> list[float]:
    """Encoder once per distinct source; decoder micro-batches reuse its states."""
    from transformers.modeling_outputs import BaseModelOutput

    model, dev, pad = lm.model, lm.model.device, _pad_id(lm)
    start = model.config.decoder_start_token_id
    sums = [0.0] * len(src)
    for keys, users in _source_chunks(src, batch_size, token_budget):
        states, mask = _encode_sources(model, [list(k) for k in keys], pad)
        _count(work, states.shape[0] * states.shape[1], 0)
        slot = {i: b for b, k in enumerate(keys) for i in users[k]}
        items = list(slot)
        lengths = {i: len(tgt[i]) for i in items}
        for batch in _micro_batches(items, lengths, context=states.shape[1], batch_size=batch_size,
                                    token_budget=token_budget):
            width = max(len(tgt[i]) for i in batch)
            dec = torch.full((len(batch), width), pad, dtype=torch.long)
            for b, i in enumerate(batch):
                dec[b, :len(tgt[i])] = torch.tensor([start] + tgt[i][:-1])
            index = torch.tensor([slot[i] for i in batch], device=dev)
            logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=states[index]),
                           attention_mask=mask[index], decoder_input_ids=dec.to(dev), use_cache=False).logits
            _count(work, len(batch) * width, len(batch) * width)
            sel_b = torch.cat([torch.full((len(tgt[i]),), b) for b, i in enumerate(batch)]).to(dev)
            sel_j = torch.cat([torch.arange(len(tgt[i])) for i in batch]).to(dev)
            labels = torch.tensor([x for i in batch for x in tgt[i]], device=dev)
            ce = F.cross_entropy(logits[sel_b, sel_j].float(), labels, reduction="none")
            per_row = torch.zeros(len(batch), dtype=torch.float64, device=dev).index_add_(0, sel_b, ce.double())
            for i, s in zip(batch, per_row.tolist()):
                sums[i] = s
            bar.update(len(batch))
    return sums


# --------------------------------------------------------------------------- generation


def generate(
    lm: LoadedModel,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    stop_strings: Sequence[str] = ("\n",),
    batch_size: int = 32,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    progress: bool = False,
    work: Work | None = None,
    workers: int | None = None,
) -> list[Generation]:
    """Greedy outputs, in input order; same tokens as `model.generate(do_sample=False)` per prompt.

    A causal model stops at EOS, at the first token whose text contains one of `stop_strings`,
    or after `max_new_tokens`; a seq2seq model at EOS or the limit. `text` is the decoded text
    before the ending token (special tokens skipped), cut at the first stop string, stripped.
    The engine runs its own KV-cached loop (not `model.generate`) so that rows leave the batch
    as soon as they finish, prompts sharing a prefix reuse its cache, prompts are prefilled in
    length-sorted micro-batches (on `workers`, as in `score`) instead of left-padded to the
    longest, and a decoding batch may hold prompts with different prefixes (several tasks);
    each `Generation` also carries the likelihood of its `token_ids`, which equals
    `score(prompt, token_ids)`.
    """
    if not prompts:
        return []
    src = _prompt_ids(lm, prompts)
    unique: dict[tuple[int, ...], int] = {}
    for s in src:
        unique.setdefault(tuple(s), len(unique))
    seqs = [list(s) for s in unique]
    out: list[tuple[list[int], Finish, float] | None] = [None] * len(seqs)
    with _eval_mode(lm.model), progress_bar(len(seqs), progress, "generating") as bar:
        if lm.causal:
            with _engine_pool(lm, workers) as pool:
                _generate_causal(lm, seqs, out, max_new_tokens, tuple(stop_strings), batch_size, token_budget, bar,
                                 work, pool)
        else:
            _generate_seq2seq(lm, seqs, out, max_new_tokens, batch_size, token_budget, bar, work)
    results = []
    for s in src:
        ids, finish, ce_sum = out[unique[tuple(s)]]
        results.append(Generation(generation_text(lm, ids, finish, stop_strings), list(ids), finish,
                                  TargetScore.from_sum(ce_sum, len(ids)) if ids else None))
    return results


class _Rows:
    """Per-row state of a greedy batch: tokens so far, summed CE, why it ended; `alive` rows are still running."""

    def __init__(self, n: int):
        self.alive = list(range(n))
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.ce_sums = [0.0] * n
        self.finish: list[Finish] = ["length"] * n

    def advance(self, best: torch.Tensor, ce: torch.Tensor, eos: set[int], is_stop: Any) -> list[int]:
        """Append this step's tokens; returns the batch positions of rows that go on."""
        keep = []
        for k, (row, tok, c) in enumerate(zip(self.alive, best.tolist(), ce.tolist())):
            self.tokens[row].append(tok)
            self.ce_sums[row] += c
            if tok in eos:
                self.finish[row] = "eos"
            elif is_stop is not None and is_stop(tok):
                self.finish[row] = "stop"
            else:
                keep.append(k)
        return keep

    def full(self, keep: list[int], max_new: int) -> bool:
        return len(self.tokens[self.alive[keep[0]]]) >= max_new

    def keep(self, keep: list[int]) -> None:
        self.alive = [self.alive[k] for k in keep]

    def result(self, row: int) -> tuple[list[int], Finish, float]:
        return self.tokens[row], self.finish[row], self.ce_sums[row]


def _drop_finished(state: _Rows, keep: list[int], cache: Any, dev: torch.device,
                   *rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cut the cache and the per-row tensors down to the rows still generating (both decoding loops)."""
    if len(keep) == len(state.alive):
        return rows
    index = torch.tensor(keep, device=dev)
    cache.batch_select_indices(index)
    state.keep(keep)
    return tuple(r[index] for r in rows)


def _step(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy token and its cross-entropy (float32 log-softmax), per row."""
    logits = logits.float()
    best = logits.argmax(-1)
    ce = torch.logsumexp(logits, -1) - logits.gather(-1, best[:, None])[:, 0]
    return best, ce


def _generate_causal(lm, seqs, out, max_new, stop_strings, batch_size, token_budget, bar, work,
                     pool: Workers = SERIAL) -> None:
    """Prefixes shared by several prompts run once, a window of them at a time (as in scoring); the
    window's prompts are then decoded in batches that may mix prefixes: a batch's prompts are
    prefilled, then one greedy step at a time runs for all of its rows still going."""
    model = lm.model
    body, head = hidden_and_head(model)
    eos, is_stop = _eos_ids(lm), StopTokens(lm.tokenizer, stop_strings)
    reuse = _prefix_reusable(model)
    step_body, step_head = (body, head) if body is not None else (
        lambda **kw: model(**kw, logits_to_keep=1).logits, torch.nn.Identity())
    dev = model.device
    for prefix_of in _prefix_windows(model, seqs, token_budget, work, pool):
        lengths = {i: len(seqs[i]) + max_new for i in prefix_of}
        for batch in _micro_batches(list(prefix_of), lengths, context=0, batch_size=batch_size,
                                    token_budget=token_budget, overhead=1e9):
            prefixes = [prefix_of[i] for i in batch]
            rows = [seqs[i][p:] for i, (p, _) in zip(batch, prefixes)]
            if reuse:
                cache, mask, next_pos, best, ce = _prefill_aligned(lm, body, head, prefixes, rows, max_new,
                                                                   batch_size, token_budget, work, pool)
            else:
                cache, mask, next_pos, best, ce = _prefill_left_padded(lm, body, head, rows, work)
            state = _Rows(len(rows))
            for step in range(max_new):
                if step:
                    hidden = step_body(input_ids=best[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                                       use_cache=True, **{CACHE: cache})
                    best, ce = _step(step_head(hidden[:, -1]))
                    _count(work, len(state.alive), len(state.alive))
                    next_pos = next_pos + 1
                keep = state.advance(best, ce, eos, is_stop)
                if not keep or state.full(keep, max_new):
                    break
                mask, next_pos, best = _drop_finished(state, keep, cache, dev, mask, next_pos, best)
                mask = torch.cat([mask, mask.new_ones((len(state.alive), 1))], dim=1)
            for b, i in enumerate(batch):
                out[i] = state.result(b)
            bar.update(len(batch))
            del cache
        del prefix_of


def _last_logits(model, body, head, kw: dict, last: torch.Tensor) -> torch.Tensor:
    """Logits at position `last[b]` of each row b of a forward pass."""
    rows = torch.arange(len(last), device=last.device)
    if body is not None:
        return head(body(**kw)[rows, last])
    first = int(last.min())
    return model(**kw, logits_to_keep=slice(first, None)).logits[rows, last - first]


def _prefill_aligned(lm, body, head, prefixes, rows, max_new, batch_size, token_budget, work, pool):
    """Prefill for prefix-reusing models: the rows run after their cached prefixes in micro-batches
    sorted by length and right-padded (no padding work; spread over the pool's workers, as in
    scoring), and each row's prefix and row keys/values are copied into one decoding cache so that
    all rows end at the same slot, with the free slots in front masked: the layout of left padding,
    without running the padding. Returns (cache, mask, next positions, first tokens, their CE)."""
    model, dev = lm.model, lm.model.device
    n = len(rows)
    lengths = [len(r) for r in rows]
    end = max(p + length for (p, _), length in zip(prefixes, lengths))
    best = torch.empty(n, dtype=torch.long, device=dev)
    ce = torch.empty(n, dtype=torch.float32, device=dev)
    decoding: list = []
    ready = threading.Lock()

    def run(part: list[int]) -> None:
        kw = _after_prefixes(lm, [prefixes[b] for b in part], [rows[b] for b in part], keep_cache=True)
        longest = max(prefixes[b][0] for b in part)
        last = torch.tensor([lengths[b] - 1 for b in part], device=dev)
        best[part], ce[part] = _step(_last_logits(model, body, head, kw, last))
        _count(work, kw["input_ids"].numel(), len(part))
        layers = [(layer.keys, layer.values) for layer in kw[CACHE].layers]
        with ready:  # the first micro-batch to finish allocates the decoding cache's tensors
            if not decoding:
                decoding.extend((k.new_zeros((n, k.shape[1], end, k.shape[3])), v.new_zeros((n, v.shape[1], end, v.shape[3])))
                                for k, v in layers)
        for (keys, values), (k, v) in zip(decoding, layers):
            for j, b in enumerate(part):
                start = end - lengths[b]
                keys[b, :, start:end] = k[j, :, longest:longest + lengths[b]]
                values[b, :, start:end] = v[j, :, longest:longest + lengths[b]]

    for _ in pool.map(run, _micro_batches(list(range(n)), lengths, context=max(p for p, _ in prefixes),
                                          batch_size=batch_size, token_budget=token_budget // pool.n)):
        pass
    mask = torch.ones((n, end), dtype=torch.long, device=dev)
    for b, ((p, kv), length) in enumerate(zip(prefixes, lengths)):
        start = end - length - p
        mask[b, :start] = 0
        if p:
            for (keys, values), (k, v) in zip(decoding, kv):
                keys[b, :, start:start + p] = k[0]
                values[b, :, start:start + p] = v[0]
    from transformers import DynamicCache

    cache = DynamicCache(decoding, config=model.config)
    next_pos = torch.tensor([p + length for (p, _), length in zip(prefixes, lengths)], device=dev)
    return cache, mask, next_pos, best, ce


def _prefill_left_padded(lm, body, head, rows, work):
    """Prefill for models whose caches are not plain per-position keys/values (sliding windows and
    the like): the rows left-padded in one pass. Returns what `_prefill_aligned` does."""
    from transformers import DynamicCache

    model, dev = lm.model, lm.model.device
    n, width = len(rows), max(len(r) for r in rows)
    ids = torch.full((n, width), _pad_id(lm), dtype=torch.long)
    mask = torch.ones((n, width), dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, width - len(r):] = torch.tensor(r)
        mask[b, :width - len(r)] = 0
        pos[b, width - len(r):] = torch.arange(len(r))
    ids, mask, pos = ids.to(dev), mask.to(dev), pos.to(dev)
    cache = DynamicCache(config=model.config)
    kw = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, CACHE: cache, "use_cache": True}
    best, ce = _step(_last_logits(model, body, head, kw, torch.full((n,), width - 1, device=dev)))
    _count(work, n * width, n)
    return cache, mask, pos[:, -1] + 1, best, ce


def _generate_seq2seq(lm, seqs, out, max_new, batch_size, token_budget, bar, work) -> None:
    from transformers.modeling_outputs import BaseModelOutput

    model, dev = lm.model, lm.model.device
    eos, start = _eos_ids(lm), model.config.decoder_start_token_id
    for keys, users in _source_chunks(seqs, batch_size, token_budget, overhead=1e9):
        states, mask = _encode_sources(model, [list(k) for k in keys], _pad_id(lm))
        _count(work, states.shape[0] * states.shape[1], 0)
        n = len(keys)
        state = _Rows(n)
        dec = torch.full((n, 1), start, dtype=torch.long, device=dev)
        cache = None
        for _ in range(max_new):
            res = model(encoder_outputs=BaseModelOutput(last_hidden_state=states), attention_mask=mask,
                        decoder_input_ids=dec, use_cache=True, **{CACHE: cache})
            cache = getattr(res, CACHE)
            best, ce = _step(res.logits[:, -1])
            _count(work, len(state.alive), len(state.alive))
            keep = state.advance(best, ce, eos, None)
            if not keep or state.full(keep, max_new):
                break
            states, mask, best = _drop_finished(state, keep, cache, dev, states, mask, best)
            dec = best[:, None]
        for b, key in enumerate(keys):
            for i in users[key]:
                out[i] = state.result(b)
        bar.update(n)
