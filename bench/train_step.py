"""Benchmark: GLCCL training steps at ViT-B/32 size (random weights), side by side in one run.

For each setting (precision x gradient checkpointing) it runs optimizer steps of `GLCCLModel` on random pixels and
tokens (12 frames of 224 x 224, 32 words, one contrastive batch) and prints samples/s (median over steps) and the
peak memory, with ratios against the first setting (fp32, no checkpointing). Each setting runs in its own process.

    python -m bench.train_step --device cuda --batch 128              # the paper's MSR-VTT batch, on one GPU
    python -m bench.train_step --device cpu --batch 4 --steps 3       # a smoke run
    python -m bench.train_step --device cpu --tiny --batch 2 --frames 2 --steps 1   # the step's code path, in seconds
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

SETTINGS = [
    ("fp32", False),
    ("fp32", True),
    ("bf16", False),
    ("bf16", True),
]


def vit_b32_config(max_words: int, max_frames: int, tiny: bool = False):
    from glccl_hf import GLCCLConfig

    if tiny:  # two narrow layers per encoder: the same code path at a fraction of the cost
        encoder = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}
        return GLCCLConfig(
            max_words=max_words,
            max_frames=max_frames,
            projection_dim=64,
            text_config=encoder,
            vision_config={**encoder, "patch_size": 32},
        )
    # CLIPTextConfig / CLIPVisionConfig defaults are ViT-B/32's sizes.
    return GLCCLConfig(max_words=max_words, max_frames=max_frames, vision_config={"patch_size": 32})


def measure_step(precision: str, checkpointing: bool, args: argparse.Namespace) -> dict:
    """One setting (run in its own process for a clean peak memory): median samples/s over `args.steps` after one
    warm-up step. `args` has device, batch, words, frames, steps and tiny."""
    from glccl_hf import GLCCLModel

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = GLCCLModel(vit_b32_config(args.words, args.frames, args.tiny)).to(device).train()
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = {
        "input_ids": torch.randint(1, 49000, (args.batch, args.words), device=device),
        "pixel_values": torch.randn(args.batch, args.frames, 3, 224, 224, device=device),
        "return_loss": True,
    }
    batch["input_ids"][:, -1] = 49407  # EOT: the largest id, where the sentence feature is read
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for step in range(args.steps + 1):
        sync()
        start = time.perf_counter()
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if step:  # the first step allocates and compiles kernels
            times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024
    return {"samples_per_second": args.batch / statistics.median(times), "peak_bytes": peak, "loss": loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--words", type=int, default=32)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="a two-layer, 64-wide model instead of ViT-B/32")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        precision, checkpointing = args.child[0], args.child[1] == "1"
        print(json.dumps(measure_step(precision, checkpointing, args)))
        return

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"GLCCL ViT-B/32 training step: batch {args.batch}, {args.frames} frames, {args.words} words, {name}")
    print(f"torch {torch.__version__}, median of {args.steps} steps after one warm-up\n")
    print("| precision | gradient checkpointing | samples/s | peak memory (GiB) | speed | memory |")
    print("|---|---|---|---|---|---|")
    baseline = None
    results = []
    for precision, checkpointing in SETTINGS:
        command = [sys.executable, __file__, "--child", precision, str(int(checkpointing))]
        command += ["--device", args.device, "--batch", str(args.batch), "--words", str(args.words)]
        command += ["--frames", str(args.frames), "--steps", str(args.steps)] + (["--tiny"] if args.tiny else [])
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output"
            print(f"| {precision} | {checkpointing} | failed: {reason} | | | |")
            results.append({"precision": precision, "gradient_checkpointing": checkpointing, "error": reason})
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        results.append({"precision": precision, "gradient_checkpointing": checkpointing, **row})
        baseline = baseline or row
        speed = row["samples_per_second"] / baseline["samples_per_second"]
        memory = row["peak_bytes"] / max(baseline["peak_bytes"], 1)
        print(
            f"| {precision} | {checkpointing} | {row['samples_per_second']:.1f} | {row['peak_bytes'] / 2**30:.2f} "
            f"| {speed:.2f}x | {memory:.2f}x |"
        )
    if args.json:
        settings = {"device": name, "batch": args.batch, "frames": args.frames, "words": args.words, "tiny": args.tiny}
        with open(args.json, "w") as f:
            json.dump({"settings": settings, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
