"""Batched beam search for the NIC decoder: all images and all their beams advance in one LSTM step.

The search (the same for every batch size, greedy = beam 1):
- every image keeps `beam_size` hypotheses; at the first step only one exists (the others score -inf);
- each step scores every (hypothesis, word) pair as score + log p(word), takes the top `beam_size` over
  beam_size * V per image (torch.topk, best first), and reorders the LSTM states to the chosen parents;
- a hypothesis that emits <end> is finished: it stays in the beam with its score frozen (its only continuation
  is <pad> at log-prob 0), so it competes with the live ones until the end;
- <pad> and <start> are never generated; decoding stops when all beams of all images are finished or after
  `max_len` words (an unfinished hypothesis then counts with the words it has);
- the answer is the beam with the highest summed log-probability (with `length_norm`, the highest mean
  log-probability per generated token, <end> included; off by default, as in Show and Tell's beam search).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ..errors import ConfigError
from .vocab import END_ID, PAD_ID, START_ID

State = tuple[torch.Tensor, torch.Tensor]


class StepDecoder(Protocol):
    """What the search needs from a captioner: the state after the image, and one word step."""

    def init_state(self, img_emb: torch.Tensor) -> State: ...

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]: ...


@dataclass
class BeamOutput:
    """tokens: (B, T) int64 word ids of the best hypothesis, <end> excluded, padded with <pad> (T <= max_len);
    lengths: (B,) number of words; scores: (B,) float summed log-probabilities (the <end> step included);
    finished: (B,) bool, False when the caption was cut at max_len."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor
    finished: torch.Tensor


def reorder_state(state: State, index: torch.Tensor) -> State:
    """Select rows (dim 1 of the (layers, N, H) LSTM states) to follow the hypotheses' parents."""
    return state[0].index_select(1, index), state[1].index_select(1, index)


def beam_search(
    model: StepDecoder, img_emb: torch.Tensor, beam_size: int = 3, max_len: int = 16, length_norm: bool = False
) -> BeamOutput:
    """Caption a batch of image embeddings (B, E) with a beam of `beam_size` per image, all in one batch."""
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam size must be a positive integer, got {beam_size!r}")
    if not isinstance(max_len, int) or max_len < 1:
        raise ConfigError(f"max_len must be a positive integer, got {max_len!r}")
    B, k, device = img_emb.shape[0], beam_size, img_emb.device
    state = model.init_state(img_emb)
    state = reorder_state(state, torch.arange(B, device=device).repeat_interleave(k))
    tokens = torch.full((B * k,), START_ID, dtype=torch.long, device=device)
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(B * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(B * k, dtype=torch.long, device=device)
    seqs = torch.empty((B * k, 0), dtype=torch.long, device=device)
    base = (torch.arange(B, device=device) * k)[:, None]
    for _ in range(max_len):
        logp, state = model.step(tokens, state)  # (B*k, V)
        V = logp.shape[1]
        if V - 2 < k:
            raise ConfigError(f"beam size {k} needs a vocabulary of more than {k + 2} tokens, got {V}")
        logp = logp.float() if logp.dtype in (torch.float16, torch.bfloat16) else logp.clone()
        logp[:, PAD_ID] = float("-inf")
        logp[:, START_ID] = float("-inf")
        if finished.any():
            logp[finished] = float("-inf")
            logp[finished, PAD_ID] = 0.0
        cand = (scores.reshape(B * k, 1).to(logp.dtype) + logp).reshape(B, k * V)
        top_scores, top_idx = cand.topk(k, dim=1)  # (B, k), best first
        parent = (base + torch.div(top_idx, V, rounding_mode="floor")).reshape(-1)
        word = (top_idx % V).reshape(-1)
        was_finished = finished[parent]
        seqs = torch.cat([seqs[parent], word[:, None]], dim=1)
        lengths = lengths[parent] + (~was_finished & (word != END_ID)).long()
        finished = was_finished | (word == END_ID)
        state = reorder_state(state, parent)
        scores, tokens = top_scores, word
        if bool(finished.all()):
            break
    rank = scores
    if length_norm:  # tokens scored: the words plus <end> when finished
        steps = (lengths + finished.long()).clamp(min=1).reshape(B, k).to(scores.dtype)
        rank = scores / steps
    best = rank.argmax(dim=1)  # first maximum: topk order breaks ties
    pick = base[:, 0] + best
    best_len = lengths[pick]
    T = int(best_len.max()) if B else 0
    out = seqs[pick, :T].clone()
    out[torch.arange(T, device=device)[None, :] >= best_len[:, None]] = PAD_ID
    return BeamOutput(tokens=out, lengths=best_len, scores=scores.reshape(-1)[pick], finished=finished[pick])
