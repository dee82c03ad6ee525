"""Benchmark: the search page's answer time for one query, measured in headless Chromium (system package), over an
index of 10k segments scored with a ViT-B/32-sized GLCCL (512-d, 12 frames, 12-layer text encoder; random weights:
the cost does not depend on their values) and 640x360 H.264 videos for the thumbnails (a keyframe every 2 s).

The answer time runs from the click on Search to the moment all k thumbnails are loaded in the page. The first query
is reported apart from the median of the next ones (the thumbnail cache and the model are warm by then).

    python -m bench.app_latency
    python -m bench.app_latency --segments 10000 --queries 8 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from glccl_hf.modeling.configuration_glccl import GLCCLConfig  # noqa: E402
from glccl_hf.modeling.modeling_glccl import GLCCLModel  # noqa: E402

from bench.browser import QUERIES  # noqa: E402
from glccl_hf.data import encode_video, load_synthetic_tokenizer, write_synthetic_tokenizer  # noqa: E402
from glccl_hf.processing import GLCCLProcessor  # noqa: E402
from glccl_hf.search import VideoIndex  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 360, 30


def make_video(path: Path, seconds: int, seed: int) -> Path:
    """A moving colour gradient with a moving box, H.264 with a keyframe every 2 s."""
    shift = 40 * seed

    def frames():
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        for i in range(FPS * seconds):
            image = np.stack([(xx + 3 * i + shift) % 256, (yy + 2 * i) % 256, (xx // 4 + yy // 4 + i) % 256], -1)
            image = image.astype(np.uint8)
            left = (5 * i) % (WIDTH - 100)
            image[100:200, left : left + 100] = 255
            yield image

    return encode_video(path, frames(), fps=FPS, options={"preset": "veryfast", "g": str(2 * FPS)})


def vit_b32_model(tokenizer) -> GLCCLModel:
    text = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=0)
    return GLCCLModel(GLCCLConfig(text_config=text)).eval()


def build_index(work: Path, segments: int, videos: int, seconds: int, device: str) -> VideoIndex:
    tokenizer = load_synthetic_tokenizer(write_synthetic_tokenizer(work / "tokenizer").parent)
    model = vit_b32_model(tokenizer)
    processor = GLCCLProcessor(tokenizer, max_words=32, max_frames=12, image_size=224)
    index = VideoIndex.create(work / "index", model, processor, device=device)
    files = [str(make_video(work / f"video{i}.mp4", seconds, i)) for i in range(videos)]
    segment_seconds = 15.0
    starts_per_video = int(seconds // segment_seconds)
    generator = torch.Generator().manual_seed(0)
    for first in range(0, segments, 2048):
        count = min(2048, segments - first)
        ids = range(first, first + count)
        frame_embeds = torch.randn(count, 12, 512, generator=generator)
        video_mask = torch.ones(count, 12, dtype=torch.long)
        names = [files[i % videos] for i in ids]
        starts = [segment_seconds * ((i // videos) % starts_per_video) for i in ids]
        ends = [start + segment_seconds for start in starts]
        index.add_features(frame_embeds, video_mask, names, starts, ends, update_ann=False)
    return index


def search_stages(index: VideoIndex, queries: list[str], k: int) -> dict[str, int]:
    """Median milliseconds of each search stage over `queries`, called directly (no page): query encoding, then
    the cascade's stages as `VideoIndex.search_features` times them."""
    timings: dict[str, list[float]] = {"encode": []}
    for query in queries:
        start = time.perf_counter()
        text = index.encode_queries([query])
        timings["encode"].append(time.perf_counter() - start)
        index.search_features(text, k, timings=timings)
    return {stage: round(1000 * statistics.median(seconds)) for stage, seconds in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=10_000)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--video_seconds", type=int, default=60)
    parser.add_argument("--queries", type=int, default=len(QUERIES))
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from bench.browser import answer_time, headless_chromium, open_search_page
    from glccl_hf.search.app import build_app

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = build_index(Path(tmp), args.segments, args.videos, args.video_seconds, args.device)
        print(f"index of {len(index)} segments built in {time.perf_counter() - start:.0f} s", flush=True)
        app = build_app(index, k=args.k)
        app.launch(server_port=7862, prevent_thread_lock=True, quiet=True)
        driver = headless_chromium("1280,1900", script_timeout=120)
        try:
            open_search_page(driver, "http://127.0.0.1:7862/", timeout=60)
            answers = [answer_time(driver, q, args.k) for q in QUERIES[: args.queries]]
        finally:
            driver.quit()
            app.close()
        stages = search_stages(index, QUERIES[: args.queries], args.k)
    page_ms = [ms for ms, _ in answers]
    # The page's message gives the server's share: "(T s: search S s, thumbnails U s)".
    server = [re.search(r"\(([\d.]+) s: search ([\d.]+) s, thumbnails ([\d.]+) s\)", m).groups() for _, m in answers]
    server_s = [[float(value) for value in times] for times in server]
    result = {
        "segments": args.segments,
        "k": args.k,
        "device": args.device,
        "first_query_ms": round(page_ms[0]),
        "next_queries_median_ms": round(statistics.median(page_ms[1:])),
        "next_queries_max_ms": round(max(page_ms[1:])),
        "server_median_ms": round(1000 * statistics.median(t[0] for t in server_s)),
        "server_search_median_ms": round(1000 * statistics.median(t[1] for t in server_s)),
        "server_thumbnails_median_ms": round(1000 * statistics.median(t[2] for t in server_s)),
        "search_stages_median_ms": stages,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
