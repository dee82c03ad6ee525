"""Benchmark: feeding clips through `GLCCLDataCollator` by decoding the MP4s vs reading a frame cache (raw, JPEG).

Uses the clip of `bench/decode.py` (30 s, 640x360, 30 fps H.264, x264's default keyframe interval), copied under
`--videos` distinct names, and the paper's video input (12 frames, 224 x 224). Builds a raw and a JPEG frame cache
of the copies (`glccl_hf.data.cache_frames`), then prints, in one run:

- per core: the median time per clip through the same collator (batches of `--batch-size`, one thread, repeats
  interleaved across the three sources) and the clips/s it gives;
- the clips/s of a DataLoader with `--workers` worker processes over `--clips` clips;
- the cache's bytes per clip, and the JPEG cache's PSNR against the raw frames.

Cache reads are timed with the shards in the OS page cache (a warm second epoch); from disk, add the bytes per clip
divided by the disk's read bandwidth. `--demo` also trains the demo's GLCCL from a raw and from a JPEG cache of the
synthetic corpus (same seed) and prints both test metrics.

    python -m bench.data
    python -m bench.data --repeats 9 --workers 2 --clips 48 --demo --demo-steps 1000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.decode import FPS, HEIGHT, SECONDS, WIDTH, make_clip  # the same clip as bench/decode.py
from bench.models import demo_processor

FRAMES, IMAGE = 12, 224
SOURCES = ("decode MP4", "raw cache", "jpeg cache")


class _Rows(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def per_core_seconds(collator, rows: dict[str, list[dict]], batch_size: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per clip of each source's collator calls, repeats interleaved."""
    times: dict[str, list[float]] = {source: [] for source in rows}
    for source_rows in rows.values():
        collator(source_rows[:batch_size])  # warm up: open the cache, codec init, file cache
    for repeat in range(repeats):
        for source, source_rows in rows.items():
            start_row = (repeat * batch_size) % max(1, len(source_rows) - batch_size + 1)
            batch = source_rows[start_row : start_row + batch_size]
            start = time.perf_counter()
            out = collator(batch)
            times[source].append((time.perf_counter() - start) / len(batch))
            assert out["pixel_values"].shape[1:] == (FRAMES, 3, IMAGE, IMAGE)
    return times


def loader_clips_per_second(collator, rows: list[dict], clips: int, workers: int, batch_size: int) -> float:
    """Clips/s of a DataLoader pass (worker start-up excluded: timed from the first batch on)."""
    many = [rows[i % len(rows)] for i in range(clips + batch_size)]
    loader = torch.utils.data.DataLoader(_Rows(many), batch_size=batch_size, num_workers=workers, collate_fn=collator)
    count, start = 0, None
    for batch in loader:
        if start is None:
            start = time.perf_counter()  # after the first batch: workers are up
            continue
        count += batch["pixel_values"].shape[0]
    return count / (time.perf_counter() - start)


def cache_bytes_per_clip(directory: Path, clips: int) -> float:
    return sum(path.stat().st_size for path in directory.glob("shard-*.arrow")) / clips


def jpeg_psnr(raw_dir: Path, jpeg_dir: Path, videos: list[str], settings: dict) -> float:
    from glccl_hf.data import FrameCache

    raw, jpeg = FrameCache(raw_dir), FrameCache(jpeg_dir)
    errors = [
        torch.mean((raw.frames(v, settings).double() - jpeg.frames(v, settings).double()) ** 2).item() for v in videos
    ]
    return 10 * np.log10(255**2 / float(np.mean(errors)))


def demo_metrics(tmp: Path, steps: int, quality: int) -> dict[str, dict[str, float]]:
    """The demo's GLCCL trained and tested from a raw and from a JPEG frame cache of the synthetic corpus, and the
    raw-trained model tested on the JPEG cache (JPEG's effect on the inputs alone, without a second training)."""
    from glccl_hf import GLCCLModel
    from glccl_hf.data import cache_frames, load_retrieval_dataset, make_synthetic_corpus
    from glccl_hf.demo import DemoSettings, train_variant
    from glccl_hf.evaluation import score_dataset

    settings = DemoSettings(max_steps=steps)
    corpus = make_synthetic_corpus(tmp / "demo_data", settings.n_train, settings.n_test, seed=settings.seed)
    processor = demo_processor(corpus, settings)
    results, tests = {}, {}
    for fmt in ("raw", "jpeg"):
        train, tests[fmt] = [
            cache_frames(load_retrieval_dataset(corpus, split), processor, tmp / f"demo_{fmt}", format=fmt,
                         jpeg_quality=quality)
            for split in ("train", "test")
        ]  # fmt: skip
        name = f"trained on {fmt}, tested on {fmt}"
        results[name], _ = train_variant("glccl", {}, train, tests[fmt], processor, settings, tmp / f"demo_out_{fmt}")
    model = GLCCLModel.from_pretrained(tmp / "demo_out_raw" / "glccl")
    results["trained on raw, tested on jpeg"] = score_dataset(model, processor, tests["jpeg"], batch_size=64).metrics()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8, help="distinct copies of the clip cached")
    parser.add_argument("--repeats", type=int, default=7, help="timed collator calls per source")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--clips", type=int, default=32, help="clips each DataLoader pass delivers")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--demo", action="store_true", help="also train the demo's GLCCL from raw and JPEG caches")
    parser.add_argument("--demo-steps", type=int, default=1000, help="optimizer steps of each --demo training")
    args = parser.parse_args()

    import datasets
    from transformers import CLIPTokenizer

    from glccl_hf.data import GLCCLDataCollator, cache_frames, sampling_settings, write_synthetic_tokenizer
    from glccl_hf.processing import GLCCLProcessor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core, as in DataLoader workers
    with tempfile.TemporaryDirectory(prefix="glccl-bench-data-") as tmp_dir:
        tmp = Path(tmp_dir)
        clip = make_clip(tmp / "clip.mp4", None)
        videos = []
        for i in range(args.videos):
            videos.append(str(shutil.copyfile(clip, tmp / f"clip{i:03d}.mp4")))
        tokenizer = CLIPTokenizer.from_pretrained(str(write_synthetic_tokenizer(tmp / "tokenizer")))
        processor = GLCCLProcessor(tokenizer, max_words=32, max_frames=FRAMES, image_size=IMAGE)
        captions = ["a box moves over a gradient"] * len(videos)
        dataset = datasets.Dataset.from_dict({"video": videos, "caption": captions})
        build = {}
        cached = {}
        for fmt in ("raw", "jpeg"):
            start = time.perf_counter()
            cached[fmt] = cache_frames(dataset, processor, tmp / fmt, format=fmt, jpeg_quality=args.jpeg_quality)
            build[fmt] = (time.perf_counter() - start) / len(videos)
        rows = {
            "decode MP4": list(dataset),
            "raw cache": list(cached["raw"]),
            "jpeg cache": list(cached["jpeg"]),
        }
        collator = GLCCLDataCollator(processor)
        print(
            f"clips: {SECONDS} s {WIDTH}x{HEIGHT} {FPS} fps H.264 (x264 default keyframe interval), {args.videos} "
            f"copies; {FRAMES} frames at {IMAGE}x{IMAGE}; GLCCLDataCollator, batches of {args.batch_size}"
        )
        print(f"cache build, 1 process: raw {build['raw']:.3f} s/clip, jpeg {build['jpeg']:.3f} s/clip")
        times = per_core_seconds(collator, rows, args.batch_size, args.repeats)
        medians = {source: statistics.median(values) for source, values in times.items()}
        base = medians["decode MP4"]
        loader = {
            source: loader_clips_per_second(collator, rows[source], args.clips, args.workers, args.batch_size)
            for source in SOURCES
        }
        bytes_per_clip = {fmt: cache_bytes_per_clip(tmp / fmt, len(videos)) for fmt in ("raw", "jpeg")}
        print(
            f"\n{'source':<14}{'median s/clip':>15}{'clips/s/core':>14}{'vs decode':>11}"
            f"{f'DataLoader {args.workers}w clips/s':>26}{'bytes/clip':>14}"
        )
        for source in SOURCES:
            size = bytes_per_clip.get(source.split()[0])
            size_text = f"{size / 1e6:.2f} MB" if size else "-"
            print(
                f"{source:<14}{medians[source]:>15.4f}{1 / medians[source]:>14.1f}{base / medians[source]:>10.1f}x"
                f"{loader[source]:>26.1f}{size_text:>14}"
            )
        psnr = jpeg_psnr(tmp / "raw", tmp / "jpeg", videos, sampling_settings(processor))
        print(f"\nJPEG (quality {args.jpeg_quality}, 4:4:4) vs raw frames: PSNR {psnr:.1f} dB")
        if args.demo:
            torch.set_num_threads(threads)
            results = demo_metrics(tmp, args.demo_steps, args.jpeg_quality)
            print(f"\ndemo GLCCL ({args.demo_steps} steps) test metrics from a raw and a JPEG frame cache:")
            keys = list(next(iter(results.values())))
            print(f"{'frame cache':<32}" + "".join(f"{key:>10}" for key in keys))
            for name, metrics in results.items():
                print(f"{name:<32}" + "".join(f"{metrics[key]:>10.1f}" for key in keys))


if __name__ == "__main__":
    main()
