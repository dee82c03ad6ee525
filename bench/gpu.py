"""The GPU check (run by `bench/gpu.sh`): scorer, training step, video encoding from a frame cache, the demo.

Writes one JSON (`--out`/gpu.json) and prints one table:

1. the exact scorer (`GLCCLModel.similarity`, Nw 32, Nf 12, D 512) at 1000 x 1000 and 5000 x 5000 texts x videos in
   fp32 and bf16: median time, peak memory, max abs difference of the bf16 logits from the fp32 ones;
2. the ViT-B/32-size training step at batch 128 (`bench/train_step.py`): fp32 and bf16, with and without gradient
   checkpointing: samples/s and peak memory;
3. video encoding for evaluation (`glccl_hf.evaluation.encode_videos`, ViT-B/32, 12 frames at 224, bf16 autocast on
   CUDA) reading from a raw frame cache, and decoding the same videos for comparison: segments/s;
4. `python -m glccl_hf.demo` on the device: wall time and the test metrics.

Each part stops the run only for itself: a failing part is reported (its error in the JSON) and the others go on. A
time budget (`--budget`, seconds) skips the parts that no longer fit. It reads the device's state, never changes it.

    python -m bench.gpu --device cuda --out gpu_check
    python -m bench.gpu --device cpu --quick --out /tmp/gpu_check     # the same code paths at toy sizes, on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.features import DIM, FRAMES, WORDS, clip_like_features, to_device
from bench.models import random_glccl, random_model
from bench.train_step import SETTINGS, measure_step, vit_b32_config
from glccl_hf import GLCCLModel

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """The run's time budget."""

    def __init__(self, budget: float):
        self.deadline = time.monotonic() + budget

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_start(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_bytes(device: torch.device, start: int) -> int:
    """Peak memory above `start`: allocated CUDA memory, or the growth of the process's peak RSS on a CPU (0 when the
    process had already been that large)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - start
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start)


# ----------------------------------------------------------------------------------------------- 1. scorer


def scorer_model() -> GLCCLModel:
    """A GLCCLModel whose score matrices are non-identity (random weights: only the scorer's cost matters here)."""
    return random_glccl(width=64, projection_dim=DIM, max_words=WORDS, max_frames=FRAMES, matrix_noise=0.01)


# The precisions measured: (name, weights and features dtype, autocast dtype or None).
SCORER_PRECISIONS = (
    ("fp32", torch.float32, None),
    ("bf16", torch.float32, torch.bfloat16),  # bf16 features under bf16 autocast, as the Trainer's bf16 mode runs it
)


def time_similarity(model, text, video, device: torch.device, autocast: torch.dtype | None, repeats: int):
    """(median seconds, peak bytes, logits) of `model.similarity` after one warm-up call."""
    context = torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None)
    times = []
    with torch.no_grad(), context:
        model.similarity(text, video)  # warm up (kernels, allocator)
        start_bytes = _peak_start(device)
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            logits = model.similarity(text, video)
            _sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times), _peak_bytes(device, start_bytes), logits.float().cpu()


def run_scorer(device: torch.device, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    model = scorer_model().to(device)
    rows = []
    for size in sizes:
        text, video = clip_like_features(size, size)
        reference = None
        for name, dtype, autocast in SCORER_PRECISIONS:
            row: dict[str, Any] = {"texts": size, "videos": size, "dtype": name}
            model.to(dtype)
            t, v = (to_device(features, device, autocast or dtype) for features in (text, video))
            try:
                seconds, peak, logits = time_similarity(model, t, v, device, autocast, repeats)
            except RuntimeError as err:  # one precision failing does not hide the others
                rows.append({**row, "error": f"{type(err).__name__}: {err}"})
                continue
            finally:
                model.to(torch.float32)
            reference = logits if reference is None else reference
            row.update(seconds=seconds, peak_bytes=peak, max_abs_diff_vs_fp32=(logits - reference).abs().max().item())
            row["logit_range"] = [logits.min().item(), logits.max().item()]
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------- 2. train step


def run_train_step(device: torch.device, out: Path, quick: bool, timeout: float) -> dict[str, Any]:
    """`bench/train_step.py` with its JSON: each setting in its own process; in quick mode a tiny model, in this
    process (the code path, without the processes' start-up time)."""
    if quick:
        args = argparse.Namespace(device=str(device), batch=2, words=8, frames=2, steps=1, tiny=True)
        results = [
            {
                "precision": precision,
                "gradient_checkpointing": checkpointing,
                **measure_step(precision, checkpointing, args),
            }
            for precision, checkpointing in SETTINGS
        ]
        return {"settings": vars(args), "results": results}
    path = out / "train_step.json"
    command = [sys.executable, "-m", "bench.train_step", "--device", str(device), "--json", str(path)]
    command += ["--batch", "128", "--frames", "12", "--words", "32", "--steps", "5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)
    if result.returncode != 0 or not path.is_file():
        raise RuntimeError(f"bench/train_step.py failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------- 3. video encoding


def encoding_model(quick: bool) -> GLCCLModel:
    """ViT-B/32 GLCCL with random weights (seed 0); in quick mode the training step's tiny one."""
    return random_model(vit_b32_config(WORDS, FRAMES, tiny=quick))


def run_encoding(device: torch.device, tmp: Path, videos: int, workers: int, batch: int, quick: bool) -> dict:
    """Segments/s of `encode_videos` reading a raw frame cache, and decoding the same videos.

    The videos are the synthetic corpus's (64 x 64, 6 s) sampled at 2 fps, so each gives 12 frames; the cache holds
    them at 224 x 224, the model's input, so reading cost does not depend on the source resolution.
    """
    from glccl_hf.data import cache_frames, load_retrieval_dataset, load_synthetic_tokenizer, make_synthetic_corpus
    from glccl_hf.evaluation import encode_videos
    from glccl_hf.processing import GLCCLProcessor

    corpus = make_synthetic_corpus(tmp / "encoding_corpus", 1, videos, seed=0)
    processor = GLCCLProcessor(
        load_synthetic_tokenizer(corpus), max_words=WORDS, max_frames=FRAMES, image_size=224, sample_fps=2.0
    )
    dataset = load_retrieval_dataset(corpus, "test")
    start = time.perf_counter()
    cache_frames(dataset, processor, tmp / "encoding_cache", num_proc=max(1, workers))
    build = time.perf_counter() - start
    model = encoding_model(quick).to(device)
    paths = list(dataset["video"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    result: dict[str, Any] = {"videos": len(paths), "frames": FRAMES, "image_size": 224, "batch_size": batch}
    result["num_workers"] = workers
    result["cache_build_seconds"] = build
    for source, frame_cache in (("frame cache (raw)", tmp / "encoding_cache"), ("decoding", None)):
        with autocast:
            encode_videos(model, processor, paths[:batch], batch_size=batch, device=device, progress=False)  # warm up
            _sync(device)
            start = time.perf_counter()
            features = encode_videos(
                model,
                processor,
                paths,
                batch_size=batch,
                num_workers=workers,
                device=device,
                progress=False,
                frame_cache=frame_cache,
            )
            _sync(device)
        seconds = time.perf_counter() - start
        assert features.frame_embeds.shape[:2] == (len(paths), FRAMES)
        result[source] = {"seconds": seconds, "segments_per_second": len(paths) / seconds}
    return result


# ---------------------------------------------------------------------------------------------------- 4. demo


def run_demo(device: torch.device, out: Path, quick: bool, timeout: float) -> dict[str, Any]:
    """`make demo` (`python -m glccl_hf.demo`, defaults) in its own process; in quick mode a toy-sized demo run in
    this process (it trains on the GPU whenever one is visible)."""
    demo_dir = out / "demo_output"
    if quick:
        from glccl_hf.demo import DemoSettings
        from glccl_hf.demo import run_demo as demo

        settings = DemoSettings(n_train=4, n_test=2, max_steps=1, batch_size=4)
        start = time.perf_counter()
        metrics = demo(demo_dir, settings)
        return {"seconds": time.perf_counter() - start, "metrics": metrics, "settings": vars(settings)}
    command = [sys.executable, "-m", "glccl_hf.demo", "--output_dir", str(demo_dir)]
    env = dict(os.environ)
    if device.type == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the demo trains on the GPU whenever one is visible
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"the demo failed ({result.returncode}):\n{result.stderr[-3000:]}")
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    return {"seconds": seconds, "metrics": metrics, "settings": json.loads((demo_dir / "settings.json").read_text())}


# ----------------------------------------------------------------------------------------------------- report


def _part(report: dict, name: str, clock: Clock, needs: float, run: Callable[[], Any]) -> None:
    """Run one part into report[name]; a failure or a lack of time is recorded, not raised."""
    if clock.left() < needs:
        report[name] = {"skipped": f"{clock.left():.0f} s left of the budget, the part needs about {needs:.0f} s"}
        print(f"[gpu check] {name}: skipped (time budget)", flush=True)
        return
    print(f"[gpu check] {name} ...", flush=True)
    start = time.perf_counter()
    try:
        report[name] = run()
    except Exception as err:  # noqa: BLE001 (every part's failure is reported, the others still run)
        report[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-4000:]}
        print(f"[gpu check] {name}: FAILED {type(err).__name__}: {err}", flush=True)
    print(f"[gpu check] {name}: {time.perf_counter() - start:.1f} s", flush=True)


def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(
            gpu=properties.name,
            gpu_memory_bytes=properties.total_memory,
            cuda=torch.version.cuda,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        )
    import av
    import transformers

    info.update(transformers=transformers.__version__, av=av.__version__)
    return info


MIB, GIB = 2**20, 2**30


def _scorer_lines(scorer: Any) -> list[str]:
    lines = [
        "| scorer (texts x videos) | dtype | time (s) | peak memory (MiB) | max abs diff vs fp32 |",
        "|---|---|---|---|---|",
    ]
    if not isinstance(scorer, list):
        return [*lines, f"| {json.dumps(scorer)[:200]} | | | | |"]
    for row in scorer:
        size = f"| {row['texts']} x {row['videos']} | {row['dtype']} |"
        if "error" in row:
            lines.append(f"{size} failed: {row['error'][:100]} | | |")
        else:
            lines.append(
                f"{size} {row['seconds']:.4f} | {row['peak_bytes'] / MIB:.0f} | {row['max_abs_diff_vs_fp32']:.2e} |"
            )
    return lines


def _train_step_lines(step: Any) -> list[str]:
    lines = ["| training step | gradient checkpointing | samples/s | peak memory (GiB) |", "|---|---|---|---|"]
    if not isinstance(step, dict) or "results" not in step:
        return [*lines, f"| {json.dumps(step)[:200]} | | | |"]
    for row in step["results"]:
        setting = f"| {row['precision']} | {row['gradient_checkpointing']} |"
        if "error" in row:
            lines.append(f"{setting} failed: {row['error']} | |")
        else:
            lines.append(f"{setting} {row['samples_per_second']:.1f} | {row['peak_bytes'] / GIB:.2f} |")
    return lines


def _encoding_lines(encoding: Any) -> list[str]:
    lines = ["| video encoding (evaluation) | segments/s |", "|---|---|"]
    sources = [source for source in ("frame cache (raw)", "decoding") if source in encoding]
    if not sources:
        return [*lines, f"| {json.dumps(encoding)[:200]} | |"]
    return lines + [f"| {source} | {encoding[source]['segments_per_second']:.1f} |" for source in sources]


def _demo_lines(demo: Any) -> list[str]:
    if "metrics" not in demo:
        return [f"demo: {json.dumps(demo)[:300]}"]
    lines = [f"demo: {demo['seconds']:.0f} s; test t2v R@1 / v2t R@1:"]
    for name, metrics in demo["metrics"].items():
        lines.append(f"  {name:<8} {metrics['t2v_R@1']:6.1f} {metrics['v2t_R@1']:6.1f}")
    return lines


def table(report: dict[str, Any]) -> str:
    """The report as Markdown tables, one per part; a failed or skipped part shows its JSON."""
    lines = [f"GLCCL GPU check on {report['environment'].get('gpu', report['environment']['device'])}", ""]
    lines += _scorer_lines(report.get("scorer"))
    lines += ["", *_train_step_lines(report.get("train_step", {}))]
    lines += ["", *_encoding_lines(report.get("video_encoding", {}))]
    lines += ["", *_demo_lines(report.get("demo", {}))]
    return "\n".join(lines)


def failures(report: dict[str, Any]) -> list[str]:
    """The parts (and training settings) that failed."""
    failed = [name for name, part in report.items() if isinstance(part, dict) and "error" in part]
    if isinstance(report.get("scorer"), list):
        failed += [f"scorer {r['texts']} x {r['videos']} {r['dtype']}" for r in report["scorer"] if "error" in r]
    step = report.get("train_step")
    if isinstance(step, dict):
        failed += [
            f"train_step {r['precision']} {r['gradient_checkpointing']}"
            for r in step.get("results", [])
            if "error" in r
        ]
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="toy sizes: the code paths, not the figures")
    parser.add_argument("--out", default="gpu_check", help="folder for gpu.json and the demo's output")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(args.budget)
    quick = args.quick
    report: dict[str, Any] = {"environment": environment(device), "quick": quick}
    workers = 0 if quick else min(8, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="glccl-gpu-check-") as tmp_dir:
        tmp = Path(tmp_dir)
        sizes = [16, 32] if quick else [1000, 5000]
        _part(report, "scorer", clock, 5, lambda: run_scorer(device, sizes, 1 if quick else 3))
        _part(report, "train_step", clock, 10, lambda: run_train_step(device, out, quick, clock.left()))
        videos, batch = (2, 2) if quick else (256, 64)
        _part(report, "video_encoding", clock, 10, lambda: run_encoding(device, tmp, videos, workers, batch, quick))
        _part(report, "demo", clock, 20, lambda: run_demo(device, out, quick, clock.left()))
    report["total_seconds"] = args.budget - clock.left()
    (out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(out / "demo_output" / "data", ignore_errors=True)  # the regenerated corpus, not a result
    print(table(report))
    print(f"\nwrote {out / 'gpu.json'} ({report['total_seconds']:.0f} s)")
    failed = failures(report)
    if failed:
        print(f"FAILED: {', '.join(failed)} (see {out / 'gpu.json'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
