"""Benchmark: GLCCL's exact block-wise scorer (`GLCCLModel.similarity`) against the naive, materialising formulation.

Prints, side by side in one run, the median time and peak memory of both at 128 texts x 128 videos and their max abs
difference, then the exact scorer alone at 1000 x 1000 (MSR-VTT 1k-A size) and optionally larger. Each measurement
runs in its own process so that the peak memory of one cannot hide in another's (CPU: peak RSS above the process's
baseline; CUDA: torch.cuda.max_memory_allocated).

Then the scorer against its floor: the one matrix product it cannot avoid, the [texts * (2 + 2 Nw), D] text-side
query matrix times the [D, videos * Nf] frames, computed in blocks of 32 texts x 32 videos into a reused output
buffer (its cheapest form measured on CPU), timed in the same process as `GLCCLModel.similarity`, the two
interleaved, medians; the ratio similarity / floor is what the scorer costs beyond that product.

    python -m bench.similarity                      # CPU, float32 (from the repository root)
    python -m bench.similarity --threads 1          # one intra-op thread (steadier on a shared machine)
    python -m bench.similarity --device cuda --dtype bfloat16 --sizes 128 1000 5000 --floor-size 5000
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
from glccl_hf.modeling.glim import GLCCLScoreMatrices, GLIMScorer

from bench.features import DIM, FRAMES, WORDS, clip_like_features, to_device
from tests.naive_glccl import naive_glccl_scores

ROOT = Path(__file__).resolve().parents[1]


def _inputs(size: int, device: str, dtype: torch.dtype, seed: int = 0):
    """`size` x `size` CLIP-like features (`bench.features`) and score matrices near the identity, as the paper's
    symbols: W_g and W_loc act on features [dim, dim]; the six pools mix token positions [words, words]."""
    text, video = clip_like_features(size, size, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    matrices = {
        symbol: torch.eye(n) + 0.01 * torch.randn(n, n, generator=generator)
        for symbol in GLCCLScoreMatrices.paper_symbols.values()
        for n in [DIM if symbol in ("W_g", "W_loc") else WORDS]
    }
    return (
        to_device(text, device, dtype),
        to_device(video, device, dtype),
        {k: v.to(device) for k, v in matrices.items()},
    )


def _glccl_runner(inputs):
    text, video, mats = inputs
    matrices = GLCCLScoreMatrices(DIM, WORDS).to(video.frame_embeds.device)
    with torch.no_grad():
        for name, symbol in matrices.paper_symbols.items():
            getattr(matrices, name).copy_(mats[symbol])
    scale = torch.tensor(100.0, device=video.frame_embeds.device)
    features = (text.sentence_embeds, text.word_embeds, text.word_mask, video.frame_embeds, video.video_mask)
    return lambda: GLIMScorer(*features, matrices, scale).parts().mean(0)


def _naive_runner(inputs):
    text, video, mats = inputs
    promote = lambda x: x.float() if x.is_floating_point() else x  # noqa: E731 (the naive code has no autocast)
    features = (text.sentence_embeds, text.word_embeds, text.word_mask, video.frame_embeds, video.video_mask)
    args = [promote(x) for x in features]
    return lambda: naive_glccl_scores(*args, mats, 100.0)[0]


def _measure(method: str, size: int, device: str, dtype_name: str, repeats: int, out: str) -> dict:
    """Runs in a child process: time `repeats` calls, report the median, the peak memory and save the logits."""
    torch.set_grad_enabled(False)
    dtype = getattr(torch, dtype_name)
    inputs = _inputs(size, device, dtype)
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


def _floor_runner(size: int, device: str, dtype: torch.dtype, block_size: int = 32):
    """The irreducible GEMM: [size * (2 + 2 Nw), D] queries times [D, size * Nf] frames, in blocks of
    block_size texts x block_size videos written into one reused output buffer (no allocation in the loop)."""
    generator = torch.Generator().manual_seed(1)
    queries_per_text = 2 + 2 * WORDS
    queries = torch.randn(size * queries_per_text, DIM, generator=generator).to(device=device, dtype=dtype)
    frames_t = torch.randn(DIM, size * FRAMES, generator=generator).to(device=device, dtype=dtype)
    rows, cols = block_size * queries_per_text, block_size * FRAMES
    buffer = torch.empty(rows, cols, device=device, dtype=dtype)

    def run() -> None:
        for r0 in range(0, queries.shape[0], rows):
            block = queries[r0 : r0 + rows]
            for c0 in range(0, frames_t.shape[1], cols):
                columns = frames_t[:, c0 : c0 + cols]
                torch.mm(block, columns, out=buffer[: block.shape[0], : columns.shape[1]])

    return run


def _measure_floor(size: int, device: str, dtype_name: str, repeats: int) -> dict:
    """Runs in a child process: the floor GEMM and the exact scorer, interleaved, `repeats` times each."""
    torch.set_grad_enabled(False)
    dtype = getattr(torch, dtype_name)
    runs = {
        "floor": _floor_runner(size, device, dtype),
        "similarity": _glccl_runner(_inputs(size, device, dtype)),
    }
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            sync()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    medians = {name: statistics.median(values) for name, values in wall.items()}
    medians.update({f"{name}_cpu": statistics.median(values) for name, values in cpu.items()})
    return medians


def _child(method: str, size: int, args, out: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.similarity",
        "--child",
        method,
        "--size",
        str(size),
        "--device",
        args.device,
    ]
    command += ["--dtype", args.dtype, "--repeats", str(args.repeats), "--out", out]
    if args.threads:
        command += ["--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
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
    parser.add_argument("--floor-size", type=int, default=1000, help="size of floor GEMM vs similarity (0: skip)")
    parser.add_argument("--threads", type=int, help="intra-op threads (torch.set_num_threads); default: torch's")
    parser.add_argument("--child", choices=["glccl", "naive", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child == "floor":
        print(json.dumps(_measure_floor(args.size, args.device, args.dtype, args.repeats)))
        return
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
    if args.floor_size:
        size = args.floor_size
        floor = _child("floor", size, args, "")
        gemm = f"floor GEMM [{size} x {2 + 2 * WORDS}, {DIM}] x [{DIM}, {size} x {FRAMES}]"
        # CPU time of the process (all its threads) next to wall time: on a shared machine the wall time also
        # counts the time spent waiting for a core.
        print(f"\n| {size} x {size}, same process, interleaved | wall time (s) | CPU time (s) |")
        print("|---|---|---|")
        print(f"| {gemm} | {floor['floor']:.3f} | {floor['floor_cpu']:.3f} |")
        print(f"| GLCCLModel.similarity | {floor['similarity']:.3f} | {floor['similarity_cpu']:.3f} |")
        ratio, ratio_cpu = floor["similarity"] / floor["floor"], floor["similarity_cpu"] / floor["floor_cpu"]
        print(f"| ratio similarity / floor | **{ratio:.2f}x** | **{ratio_cpu:.2f}x** |")


if __name__ == "__main__":
    main()
