#!/usr/bin/env python
"""Make docs/search_app.png: the search page in headless Chromium over the demo's synthetic test videos, indexed
with the demo's GLCCL trained from scratch (a minute or two on 2 idle CPU cores), after a query and a click on the
top hit. Run from the repository root:

    python -m docs.search_app_screenshot [--work_dir /tmp/glccl-screenshot] [--max_steps 1000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402
from glccl_hf.modeling.modeling_glccl import GLCCLModel  # noqa: E402
from PIL import Image  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bench.browser import QUERIES, headless_chromium, open_search_page  # noqa: E402
from bench.models import demo_checkpoint, demo_corpus, demo_processor  # noqa: E402
from glccl_hf.demo import DemoSettings, demo_config  # noqa: E402
from glccl_hf.search import VideoIndex  # noqa: E402
from glccl_hf.search.app import build_app  # noqa: E402
from glccl_hf.search.storage import MANIFEST  # noqa: E402

QUERY = QUERIES[0]
OUT = Path(__file__).resolve().parent / "search_app.png"


def untrained_checkpoint(work: Path, settings: DemoSettings) -> Path:
    """The demo's GLCCL untrained, with its processor: the page and its parts as they are, the ranking meaningless."""
    processor = demo_processor(demo_corpus(work / "data", settings), settings)
    torch.manual_seed(settings.seed)
    GLCCLModel(demo_config(processor.tokenizer, settings)).save_pretrained(work / "glccl")
    processor.save_pretrained(work / "glccl")
    return work / "glccl"


def trained_index(work: Path, max_steps: int) -> VideoIndex:
    """The demo's GLCCL (trained once, then reused) and an index of the synthetic test videos."""
    if (work / "index" / MANIFEST).exists():
        return VideoIndex.open(work / "index")
    settings = DemoSettings(max_steps=max_steps)
    checkpoint = demo_checkpoint(work, settings) if max_steps > 0 else untrained_checkpoint(work, settings)
    index = VideoIndex.create(work / "index", checkpoint, segment_seconds=6.0)
    index.add(str(work / "data" / "test"), progress=False)
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default="/tmp/glccl-screenshot")
    parser.add_argument(
        "--max_steps", type=int, default=DemoSettings.max_steps, help="training steps of the model (0: untrained)"
    )
    args = parser.parse_args()
    work = Path(args.work_dir)
    app = build_app(trained_index(work, args.max_steps), k=8)
    app.launch(server_port=7861, prevent_thread_lock=True, quiet=True)
    driver = headless_chromium("1100,1250")
    try:
        open_search_page(driver, "http://127.0.0.1:7861/")
        driver.find_element(By.CSS_SELECTOR, "#glccl-query textarea").send_keys(QUERY)
        driver.find_element(By.ID, "glccl-search").click()
        WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#glccl-gallery img")) == 8)
        driver.find_elements(By.CSS_SELECTOR, "#glccl-gallery img")[0].click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#glccl-strip img"))
        time.sleep(1.5)  # the video starts playing from the segment's start
        shot = work / "shot.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
        app.close()
    # A 256-colour palette keeps the picture small for the repository.
    Image.open(shot).convert("RGB").quantize(256).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
