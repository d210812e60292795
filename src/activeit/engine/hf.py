"""The `hf` backend: plain transformers forward passes and `model.generate`, nothing else.

The simplest correct code for the engine contract: the oracle the other backends are tested
against and the baseline the benchmarks compare them with. One padded forward pass per batch
of (prompt, target) pairs; greedy decoding through `generate` with per-row stop rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import StoppingCriteria, StoppingCriteriaList

from activeit.engine.base import (
    Finish,
    Generation,
    StopTokens,
    Target,
    TargetScore,
    Work,
    eos_ids,
    generation_text,
    inference,
    pad_id,
    progress_bar,
    prompt_ids,
    score_ids,
)
from activeit.engine import register_engine
from activeit.models import LoadedModel


def _batches(n: int, batch_size: int) -> list[range]:
    return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class HFEngine:
    name = "hf"

    def __init__(self, lm: LoadedModel):
        self.lm = lm

    # ------------------------------------------------------------------ scoring

    def score(self, prompts: Sequence[str], targets: Sequence[Target], *, batch_size: int = 32,
              progress: bool = False, work: Work | None = None) -> list[TargetScore]:
        src, tgt = score_ids(self.lm, prompts, targets)
        if not src:
            return []
        out: list[TargetScore] = []
        with inference(self.lm.model), progress_bar(len(src), progress, "scoring") as bar:
            for part in _batches(len(src), batch_size):
                sums = (self._causal_ce if self.lm.causal else self._seq2seq_ce)([src[i] for i in part],
                                                                                [tgt[i] for i in part], work)
                out += [TargetScore.from_sum(s, len(tgt[i])) for s, i in zip(sums, part)]
                bar.update(len(part))
        return out

    def _causal_ce(self, src: list[list[int]], tgt: list[list[int]], work: Work | None) -> list[float]:
        rows = [s + t for s, t in zip(src, tgt)]
        width = max(map(len, rows))
        dev = self.lm.model.device
        ids = torch.full((len(rows), width), pad_id(self.lm), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for r, (s, t) in enumerate(zip(src, tgt)):
            ids[r, : len(s) + len(t)] = torch.tensor(s + t)
            mask[r, : len(s) + len(t)] = 1
            labels[r, len(s): len(s) + len(t)] = torch.tensor(t)
        logits = self.lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.float()
        if work is not None:
            work.tokens += ids.numel()
            work.logit_rows += ids.numel()
            work.forwards += 1
        return _row_sums(logits[:, :-1], labels[:, 1:].to(dev))

    def _seq2seq_ce(self, src: list[list[int]], tgt: list[list[int]], work: Work | None) -> list[float]:
        dev = self.lm.model.device
        pad = pad_id(self.lm)
        ids = torch.full((len(src), max(map(len, src))), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full((len(tgt), max(map(len, tgt))), -100, dtype=torch.long)
        for r, (s, t) in enumerate(zip(src, tgt)):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
            labels[r, : len(t)] = torch.tensor(t)
        logits = self.lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)).logits.float()
        if work is not None:
            work.tokens += ids.numel() + labels.numel()
            work.logit_rows += labels.numel()
            work.forwards += 1
        return _row_sums(logits, labels.to(dev))

    # ------------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, stop_strings: Sequence[str] = ("\n",),
                 batch_size: int = 32, progress: bool = False, work: Work | None = None) -> list[Generation]:
        if not prompts:
            return []
        src = prompt_ids(self.lm, prompts)
        stops = tuple(stop_strings) if self.lm.causal else ()
        out: list[Generation] = []
        with inference(self.lm.model), progress_bar(len(src), progress, "generating") as bar:
            for part in _batches(len(src), batch_size):
                out += self._generate([src[i] for i in part], max_new_tokens, stops, work)
                bar.update(len(part))
        return out

    def _generate(self, src: list[list[int]], max_new: int, stops: tuple[str, ...], work: Work | None) -> list[Generation]:
        lm = self.lm
        dev = lm.model.device
        pad = pad_id(lm)
        width = max(map(len, src))
        ids = torch.full((len(src), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, s in enumerate(src):
            if lm.causal:  # left padding: every row's next token is at the last position
                ids[r, width - len(s):] = torch.tensor(s)
                mask[r, width - len(s):] = 1
            else:
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
        eos = eos_ids(lm)
        is_stop = StopTokens(lm.tokenizer, stops)
        result = lm.model.generate(
            input_ids=ids.to(dev), attention_mask=mask.to(dev), do_sample=False, num_beams=1,
            max_new_tokens=max_new, eos_token_id=sorted(eos) or None, pad_token_id=pad,
            stopping_criteria=StoppingCriteriaList([_StopAtToken(is_stop)]) if stops else None,
            return_dict_in_generate=True, output_logits=True,
            temperature=None, top_p=None, top_k=None)
        new = result.sequences[:, width:] if lm.causal else result.sequences[:, 1:]
        logp = torch.stack(result.logits, 1).float().log_softmax(-1)
        if work is not None:
            steps = len(result.logits)
            work.forwards += steps
            work.tokens += ids.numel() + len(src) * max(0, steps - 1)
            work.logit_rows += len(src) * steps
        gens = []
        for r in range(len(src)):
            tokens: list[int] = []
            finish: Finish = "length"
            ce = 0.0
            for step, tok in enumerate(new[r].tolist()[:max_new]):
                tokens.append(tok)
                ce -= float(logp[r, step, tok])
                if tok in eos:
                    finish = "eos"
                    break
                if is_stop(tok):
                    finish = "stop"
                    break
            gens.append(Generation(generation_text(lm, tokens, finish, stops), tokens, finish,
                                   TargetScore.from_sum(ce, len(tokens)) if tokens else None))
        return gens


def _row_sums(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Summed target CE per row. Cross-entropy over the (positions × vocabulary) rows of the target
    positions: the (batch, vocabulary, length) layout is off by ~2e-4 per token in float32 with a
    49k vocabulary, far beyond the 1e-4 the backends are held to."""
    where = labels != -100
    ce = F.cross_entropy(logits[where], labels[where], reduction="none")
    sums = torch.zeros(len(labels), dtype=torch.float64, device=ce.device)
    return sums.index_add_(0, where.nonzero()[:, 0], ce.double()).tolist()


class _StopAtToken(StoppingCriteria):
    """Per-row stop when the last token's text contains a stop string (the engine's rule,
    not transformers' `stop_strings`, which matches across token boundaries)."""

    def __init__(self, is_stop: StopTokens):
        self.is_stop = is_stop

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return torch.tensor([self.is_stop(int(t)) for t in input_ids[:, -1].tolist()], device=input_ids.device)


@register_engine("hf")
def _make(lm: LoadedModel) -> HFEngine:
    return HFEngine(lm)
