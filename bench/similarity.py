"""Benchmark: GLCCL's exact tiled scorer (`GLCCLModel.similarity`) against the naive, materialising formulation.

Prints, side by side in one run, the median time and peak memory of both at 128 texts x 128 videos and their max abs
difference, then the exact scorer alone at 1000 x 1000 (MSR-VTT 1k-A size) and optionally larger. Each measurement
runs in its own process so that the peak memory of one cannot hide in another's (CPU: peak RSS above the process's
baseline; CUDA: torch.cuda.max_memory_allocated).

    python bench/similarity.py                      # CPU, float32
    python bench/similarity.py --device cuda --dtype bfloat16 --sizes 128 1000 5000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WORDS, FRAMES, DIM = 32, 12, 512


def _inputs(num_texts: int, num_videos: int, device: str, dtype: torch.dtype, seed: int = 0):
    """CLIP-like features: a shared component plus noise, as real CLIP embeddings are far from orthogonal."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(DIM, generator=generator)
    sentence = common + torch.randn(num_texts, DIM, generator=generator)
    words = common + torch.randn(num_texts, WORDS, DIM, generator=generator)
    frames = common + torch.randn(num_videos, FRAMES, DIM, generator=generator)
    word_mask = torch.zeros(num_texts, WORDS, dtype=torch.long)
    for row, length in enumerate(torch.randint(4, WORDS + 1, (num_texts,), generator=generator).tolist()):
        word_mask[row, :length] = 1
    frame_mask = torch.zeros(num_videos, FRAMES, dtype=torch.long)
    for row, count in enumerate(torch.randint(3, FRAMES + 1, (num_videos,), generator=generator).tolist()):
        frame_mask[row, :count] = 1
    from glccl_hf.modeling.glim import GLCCLScoreHeads

    # W_g and W_loc act on features [dim, dim]; the six pools mix token positions [words, words].
    heads = {
        symbol: torch.eye(size) + 0.01 * torch.randn(size, size, generator=generator)
        for symbol in GLCCLScoreHeads.paper_symbols.values()
        for size in [DIM if symbol in ("W_g", "W_loc") else WORDS]
    }
    move = lambda x: x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)  # noqa: E731
    return (
        move(sentence),
        move(words),
        move(word_mask),
        move(frames),
        move(frame_mask),
        {k: v.to(device) for k, v in heads.items()},
    )


def _glccl_runner(inputs):
    from glccl_hf.modeling.glim import GLCCLScoreHeads, GLIMScorer

    sentence, words, word_mask, frames, frame_mask, mats = inputs
    heads = GLCCLScoreHeads(DIM, WORDS).to(frames.device)
    with torch.no_grad():
        for name, symbol in heads.paper_symbols.items():
            getattr(heads, name).copy_(mats[symbol])
    scale = torch.tensor(100.0, device=frames.device)
    return lambda: GLIMScorer(sentence, words, word_mask, frames, frame_mask, heads, scale).parts().mean(0)


def _naive_runner(inputs):
    sys.path.insert(0, str(ROOT / "tests"))
    from naive_glccl import naive_glccl_scores

    sentence, words, word_mask, frames, frame_mask, mats = inputs
    promote = lambda x: x.float() if x.is_floating_point() else x  # noqa: E731 (the naive code has no autocast)
    args = [promote(x) for x in (sentence, words, word_mask, frames, frame_mask)]
    return lambda: naive_glccl_scores(*args, mats, 100.0)[0]


def _measure(method: str, size: int, device: str, dtype_name: str, repeats: int, out: str) -> dict:
    """Runs in a child process: time `repeats` calls, report the median, the peak memory and save the logits."""
    torch.set_grad_enabled(False)
    dtype = getattr(torch, dtype_name)
    inputs = _inputs(size, size, device, dtype)
    run = (_glccl_runner if method == "glccl" else _naive_runner)(inputs)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        logits = run()
        sync()
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024
    torch.save(logits.float().cpu(), out)
    return {"seconds": statistics.median(times), "peak_bytes": peak}


def _child(method: str, size: int, args, out: str) -> dict:
    command = [sys.executable, __file__, "--child", method, "--size", str(size), "--device", args.device]
    command += ["--dtype", args.dtype, "--repeats", str(args.repeats), "--out", out]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{method} at {size} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-size", type=int, default=128, help="size of the side-by-side comparison")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000], help="sizes for the exact scorer alone")
    parser.add_argument("--child", choices=["glccl", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.size, args.device, args.dtype, args.repeats, args.out)))
        return

    mib = 2**20
    print(f"GLCCL similarity, Nw={WORDS} Nf={FRAMES} D={DIM}, device={args.device}, features {args.dtype}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, median of {args.repeats}\n")
    with tempfile.TemporaryDirectory() as tmp:
        size = args.compare_size
        naive = _child("naive", size, args, f"{tmp}/naive.pt")
        glccl = _child("glccl", size, args, f"{tmp}/glccl.pt")
        diff = (torch.load(f"{tmp}/naive.pt") - torch.load(f"{tmp}/glccl.pt")).abs().max().item()
        print(f"| {size} x {size} | time (s) | peak memory (MiB) |")
        print("|---|---|---|")
        print(f"| naive (materialising) | {naive['seconds']:.3f} | {naive['peak_bytes'] / mib:.0f} |")
        print(f"| GLCCLModel.similarity | {glccl['seconds']:.3f} | {glccl['peak_bytes'] / mib:.0f} |")
        time_ratio = naive["seconds"] / glccl["seconds"]
        memory_ratio = naive["peak_bytes"] / max(glccl["peak_bytes"], 1)
        print(f"| ratio naive / ours | {time_ratio:.1f}x | {memory_ratio:.1f}x |")
        print(f"\nmax abs difference of the fused logits: {diff:.2e}\n")
        if args.sizes:
            print("| exact scorer alone | time (s) | peak memory (MiB) |")
            print("|---|---|---|")
        for size in args.sizes:
            result = _child("glccl", size, args, f"{tmp}/big.pt")
            print(f"| {size} x {size} | {result['seconds']:.3f} | {result['peak_bytes'] / mib:.0f} |")


if __name__ == "__main__":
    main()
