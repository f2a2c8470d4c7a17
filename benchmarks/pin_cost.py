"""What the CPU pin (scripts/pinned.sh) costs, and what it fixes: training iterations of configs/cls/demo_cutmix.py's
model (ResNet-18 in the WSOL form, CutMix, the config's SGD; batch 64 of 96 px synthetic images) timed pinned and
unpinned at the same thread count, in alternating rounds of fresh processes; and the sha256 of the weights after 3
SGD steps under the pin (twice), unpinned, and under each part of the pin alone.

    python benchmarks/pin_cost.py [--rounds 3 --iters 6 --threads 2]   -> benchmarks/results/pin_cost.json

Each measurement is a child process (`--child`), because the pin must be in the environment before torch starts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "cls" / "demo_cutmix.py"
PIN_VARS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "NPY_ENABLE_CPU_FEATURES",
    "OPENBLAS_CORETYPE",
    "CUDA_VISIBLE_DEVICES",
    "CUTMIX_PINNED",
    "CUTMIX_PIN_THREADS",
)
# the parts of the pin alone (issue 22 found each of the first two changes the weights on an AVX-512 machine)
PARTIAL = {
    "aten_avx2_only": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn_avx2_only": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten_onednn_mkl_avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
}


def child(iters: int, seed: int, hash_after: int) -> dict:
    """Train the demo model `iters` steps on fixed synthetic batches; seconds per step and the weights' sha256."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS

    import cutmix_transfer.classification  # noqa: F401  (registers the model)

    cfg = Config.fromfile(str(CONFIG))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.data_preprocessor.augment.reseed(seed)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    g = torch.Generator().manual_seed(seed)
    size, batch = int(cfg.image_size), int(cfg.train_dataloader.batch_size)
    data = [
        {
            "inputs": torch.randn(batch, 3, size, size, generator=g),
            "data_samples": torch.randint(0, 10, (batch,), generator=g),
        }
        for _ in range(iters)
    ]
    model.train()
    times, digest = [], None
    for i, d in enumerate(data):
        t0 = time.perf_counter()
        model.train_step(d, optim)
        times.append(time.perf_counter() - t0)
        if i + 1 == hash_after:
            h = hashlib.sha256()
            for v in model.state_dict().values():
                h.update(v.detach().contiguous().numpy().tobytes())
            digest = h.hexdigest()
    return {
        "seconds_per_step": times,
        "sha256_after": digest,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def _run(kind: str, threads: int, iters: int, seed: int, hash_after: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PIN_VARS}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--iters",
        str(iters),
        "--seed",
        str(seed),
        "--hash-after",
        str(hash_after),
    ]
    if kind == "pinned":
        env["CUTMIX_PIN_THREADS"] = str(threads)
        cmd = [str(REPO / "scripts" / "pinned.sh"), *cmd]
    else:
        env.update(PARTIAL.get(kind, {}))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=3, help="alternating pinned/unpinned rounds (fresh processes)")
    p.add_argument("--iters", type=int, default=6, help="training steps per process (the first 2 untimed)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hash-after", type=int, default=3, help="hash the weights after this many steps")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pin_cost.json"))
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.iters, args.seed, args.hash_after)))
        return

    sys.path.insert(0, str(REPO))
    from cutmix_transfer.io import atomic_write_json
    from cutmix_transfer.pinning import cpu_model

    steps: dict[str, list[float]] = {"pinned": [], "unpinned": []}
    hashes: dict[str, list[str]] = {"pinned": [], "unpinned": []}
    capability = {}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for kind in ("unpinned", "pinned"):
            out = _run(kind, args.threads, args.iters, args.seed, args.hash_after)
            steps[kind] += out["seconds_per_step"][2:]
            hashes[kind].append(out["sha256_after"])
            capability[kind] = out["capability"]
        load.append(os.getloadavg()[0])
    for kind in PARTIAL:
        out = _run(kind, args.threads, args.hash_after, args.seed, args.hash_after)
        hashes[kind] = [out["sha256_after"]]
        capability[kind] = out["capability"]
    pinned_hash = hashes["pinned"][0]
    med = {k: statistics.median(v) for k, v in steps.items()}
    result = {
        "what": "demo_cutmix training step (batch 64, 96 px, ResNet-18 WSOL form, CutMix, SGD), CPU",
        "cpu_model": cpu_model(),
        "threads": args.threads,
        "rounds": args.rounds,
        "steps_timed_per_process": args.iters - 2,
        "median_seconds_per_step": med,
        "pin_cost": med["pinned"] / med["unpinned"] - 1.0,
        "all_seconds_per_step": steps,
        "loadavg_1min_during": load,
        "aten_capability": capability,
        "sha256_after_steps": args.hash_after,
        "sha256": hashes,
        "pinned_runs_identical": len(set(hashes["pinned"])) == 1,
        "unpinned_runs_identical": len(set(hashes["unpinned"])) == 1,
        "equal_to_pinned": {k: v[0] == pinned_hash for k, v in hashes.items() if k != "pinned"},
    }
    print(f"CPU {result['cpu_model']}, {args.threads} threads, load {load}")
    for kind in ("unpinned", "pinned"):
        print(f"{kind:<10} {med[kind]:.3f} s/step (median of {len(steps[kind])}), ATen {capability[kind]}")
    print(f"pin cost {100 * result['pin_cost']:+.1f}%; pinned runs identical: {result['pinned_runs_identical']}")
    print("equal to the pinned weights:", json.dumps(result["equal_to_pinned"]))
    atomic_write_json(args.out, result)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
