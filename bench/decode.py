"""Benchmark: GLCCL's seek-based `read_frames` against transformers' `load_video(backend="pyav")`, then DataLoader
throughput of decoding + CLIP preprocessing through `GLCCLProcessor.load_video` (via the data collator).

Generates 30 s 640x360 H.264 clips with PyAV in a temporary directory: one with libx264's default keyframe interval
(250 frames) and one with a keyframe every 2 s (common for web video), then prints, in one run, the median time to get
12 frames from each clip with both readers (repeats interleaved), their ratio, and the clips/s of a DataLoader.

    python -m bench.decode
    python -m bench.decode --repeats 9 --workers 2 --clips 48
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 30, 30


def make_clip(path: Path, keyint: int | None) -> Path:
    """30 s of a moving colour gradient with a moving box (content that inter-frame coding must track)."""
    from glccl_hf.data import encode_video

    def frames():
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        for i in range(FPS * SECONDS):
            image = np.stack([(xx + 3 * i) % 256, (yy + 2 * i) % 256, (xx // 4 + yy // 4 + i) % 256], -1)
            image = image.astype(np.uint8)
            left = (5 * i) % (WIDTH - 100)
            image[100:200, left : left + 100] = 255
            yield image

    options = {"preset": "veryfast", **({"g": str(keyint)} if keyint else {})}
    return encode_video(path, frames(), fps=FPS, options=options)


def time_readers(path: Path, frames: int, repeats: int) -> dict[str, list[float]]:
    from transformers.video_utils import load_video

    from glccl_hf.video import read_frames

    read_frames(path, max_frames=frames)  # warm up (file cache, codec init) for both
    load_video(str(path), num_frames=frames, backend="pyav")
    times: dict[str, list[float]] = {"glccl read_frames": [], "transformers load_video": []}
    for _ in range(repeats):
        start = time.perf_counter()
        ours = read_frames(path, max_frames=frames)
        times["glccl read_frames"].append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs, _ = load_video(str(path), num_frames=frames, backend="pyav")
        times["transformers load_video"].append(time.perf_counter() - start)
    assert ours.frames.shape[0] == frames and len(theirs) == frames
    return times


class _Rows(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, str]:
        return {"video": str(self.paths[i]), "caption": "a box moves over a gradient"}


def dataloader_throughput(paths: list[Path], workers: int, batch_size: int, tmp: Path) -> tuple[float, float]:
    """(clips/s over the whole pass, clips/s after the first batch) for decode + preprocess through the collator."""
    from transformers import CLIPTokenizer

    from glccl_hf.data import GLCCLDataCollator, write_synthetic_tokenizer
    from glccl_hf.processing import GLCCLProcessor

    tokenizer = CLIPTokenizer.from_pretrained(str(write_synthetic_tokenizer(tmp / "tokenizer")))
    processor = GLCCLProcessor(tokenizer, max_words=32, max_frames=12, image_size=224)
    loader = torch.utils.data.DataLoader(
        _Rows(paths),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=GLCCLDataCollator(processor),
        persistent_workers=False,
    )
    start = time.perf_counter()
    first = None
    clips = 0
    for batch in loader:
        assert batch["pixel_values"].shape[1:] == (12, 3, 224, 224)
        clips += batch["pixel_values"].shape[0]
        if first is None:
            first = time.perf_counter()
            first_clips = clips
    end = time.perf_counter()
    steady = (clips - first_clips) / (end - first) if end > first else float("nan")
    return clips / (end - start), steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed reads per reader and clip")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--clips", type=int, default=32, help="clips the DataLoader decodes")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    torch.set_num_threads(1)  # as in DataLoader workers; decoding threads are PyAV's own defaults for both readers
    with tempfile.TemporaryDirectory(prefix="glccl-bench-decode-") as tmp_dir:
        tmp = Path(tmp_dir)
        clips = {
            "keyint 250 (x264 default)": make_clip(tmp / "clip_k250.mp4", None),
            "keyint 60 (2 s)": make_clip(tmp / "clip_k60.mp4", 60),
        }
        print(f"clips: {SECONDS} s {WIDTH}x{HEIGHT} {FPS} fps H.264 (PyAV {av.__version__}), {args.frames} frames each")
        print(f"{'clip':<28}{'reader':<26}{'median s':>10}{'videos/s':>10}{'speed-up':>10}")
        for label, path in clips.items():
            times = time_readers(path, args.frames, args.repeats)
            medians = {reader: statistics.median(values) for reader, values in times.items()}
            base = medians["transformers load_video"]
            for reader, median in medians.items():
                print(f"{label:<28}{reader:<26}{median:>10.3f}{1 / median:>10.2f}{base / median:>9.2f}x")

        paths = [clips["keyint 250 (x264 default)"]] * args.clips
        print(
            f"\nDataLoader, {args.clips} clips (keyint 250), batch {args.batch_size}: read_frames + preprocess "
            "to 12x3x224x224 via GLCCLProcessor.load_video in GLCCLDataCollator"
        )
        print(f"{'workers':<10}{'clips/s (all)':>15}{'clips/s (after 1st batch)':>28}")
        for workers in sorted({0, args.workers}):
            overall, steady = dataloader_throughput(paths, workers, args.batch_size, tmp)
            print(f"{workers:<10}{overall:>15.2f}{steady:>28.2f}")


if __name__ == "__main__":
    main()
