"""Benchmark: batched beam search (all images x beams in one LSTM step) vs per-image decoding, on CPU.

The NIC decoder at the paper's size (embeddings 512, LSTM 512) with a COCO-Karpathy-sized vocabulary (9,487
tokens, words seen >= 5 times), random weights; image embeddings are random (the encoder is the same for both
ways and is not timed). "Per-image" runs the same beam search once per image (batch 1: its beams still share a
step), as a caption loop over images would. Two length regimes: 'full' (no caption ends before max_len: every
step is taken, the worst case for both) and 'varied' (the <end> logit depends strongly on the state, so captions
end at different steps and per-image decoding stops early per image while the batch runs until its last image).
Both ways must give the same captions; the benchmark checks it.

    .venv/bin/python benchmarks/caption_decode.py [--batch 64] [--beam 3] [--threads 1] [--repeats 3]

Writes benchmarks/results/caption_decode.json and prints a table. Goal: >= 5x at batch 64, beam 3.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from _common import machine_name, parse_args, report_result, time_median

from cutmix_transfer.captioning import END_ID, SPECIALS, NICCaptioner, Vocabulary, beam_search


def build_model(vocab_size: int, dim: int, regime: str, seed: int) -> NICCaptioner:
    torch.manual_seed(seed)
    vocab = Vocabulary(list(SPECIALS) + [f"w{i}" for i in range(vocab_size - len(SPECIALS))])
    m = NICCaptioner(vocab, arch="resnet18", embed_dim=dim, hidden_dim=dim, max_len=16).eval()
    with torch.no_grad():
        if regime == "full":
            m.logit.bias[END_ID] = -1e4  # never ends: all max_len steps
        else:
            for p in (m.embed.weight, m.img_proj.weight, *m.lstm.parameters()):
                p.normal_(0.0, 0.15)
            m.logit.weight.normal_(0.0, 0.6)  # peaky word distributions, as a trained model has
            m.logit.bias[END_ID] = 4.0  # captions end after 1 to 16 words (about 12 on average)
    return m


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--beam", type=int, default=3)
    p.add_argument("--vocab", type=int, default=9487)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--max-len", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = parse_args(p, "caption_decode", threads=1)
    rows = []
    for regime in ("full", "varied"):
        m = build_model(args.vocab, args.dim, regime, args.seed)
        emb = torch.randn(args.batch, args.dim, generator=torch.Generator().manual_seed(args.seed))
        with torch.inference_mode():
            beam_search(m, emb[:2], args.beam, args.max_len)  # warm-up
            t_batch, out_b = time_median(
                lambda m=m, emb=emb: beam_search(m, emb, args.beam, args.max_len), args.repeats
            )
            t_img, outs = time_median(
                lambda m=m, emb=emb: [
                    beam_search(m, emb[i : i + 1], args.beam, args.max_len) for i in range(args.batch)
                ],
                args.repeats,
            )
        same = all(
            int(o.lengths[0]) == int(out_b.lengths[i])
            and o.tokens[0, : o.lengths[0]].tolist() == out_b.tokens[i, : out_b.lengths[i]].tolist()
            for i, o in enumerate(outs)
        )
        max_diff = max(abs(float(o.scores[0]) - float(out_b.scores[i])) for i, o in enumerate(outs))
        lengths = out_b.lengths.float()
        rows.append(
            {
                "regime": regime,
                "batched_s": t_batch,
                "per_image_s": t_img,
                "speedup": t_img / t_batch,
                "images_per_s_batched": args.batch / t_batch,
                "images_per_s_per_image": args.batch / t_img,
                "same_captions": same,
                "max_score_diff": max_diff,
                "mean_caption_len": float(lengths.mean()),
                "min_len": int(lengths.min()),
                "max_len": int(lengths.max()),
            }
        )
    result = {
        "benchmark": "caption_decode",
        "batch": args.batch,
        "beam": args.beam,
        "vocab": args.vocab,
        "embed_hidden": args.dim,
        "max_len": args.max_len,
        "threads": args.threads,
        "repeats": args.repeats,
        "device": "cpu",
        "cpu": machine_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "rows": rows,
        "goal_speedup": 5.0,
    }
    table = [
        (
            r["regime"],
            f"{r['batched_s']:.3f}",
            f"{r['per_image_s']:.3f}",
            f"{r['speedup']:.1f}x",
            str(r["same_captions"]),
            f"{r['mean_caption_len']:.1f}",
        )
        for r in rows
    ]
    report_result(
        args.out,
        result,
        f"NIC beam search on CPU: batch {args.batch}, beam {args.beam}, vocab {args.vocab}, LSTM {args.dim}, "
        f"max_len {args.max_len}, {args.threads} thread(s), median of {args.repeats}",
        ("regime", "batched s", "per-image s", "speed-up", "same", "mean len"),
        table,
        (8, 10, 12, 9, 5, 9),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
