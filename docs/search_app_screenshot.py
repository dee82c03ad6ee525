#!/usr/bin/env python
"""Make docs/search_app.png: the search page in headless Chromium over the demo's synthetic test videos, indexed
with the demo's GLCCL trained from scratch (a minute or two on 2 idle CPU cores), after a query and a click on the
top hit.

    python docs/search_app_screenshot.py [--work_dir /tmp/glccl-screenshot] [--max_steps 1000]
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
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from glccl_hf.data import load_retrieval_dataset, load_synthetic_tokenizer, make_synthetic_corpus  # noqa: E402
from glccl_hf.demo import VARIANTS, DemoSettings, demo_config, train_variant  # noqa: E402
from glccl_hf.processing import GLCCLProcessor  # noqa: E402
from glccl_hf.search import VideoIndex  # noqa: E402
from glccl_hf.search.app import build_app  # noqa: E402
from glccl_hf.search.storage import MANIFEST  # noqa: E402

QUERY = "a red circle moves left on a blue background"
OUT = Path(__file__).resolve().parent / "search_app.png"


def trained_index(work: Path, max_steps: int) -> VideoIndex:
    """The demo's GLCCL (trained once, then reused) and an index of the synthetic test videos."""
    if (work / "index" / MANIFEST).exists():
        return VideoIndex.open(work / "index")
    settings = DemoSettings(max_steps=max_steps)
    corpus = work / "data"
    if not (corpus / "test" / "metadata.csv").exists():
        make_synthetic_corpus(corpus, settings.n_train, settings.n_test, seed=settings.seed)
    processor = GLCCLProcessor(
        load_synthetic_tokenizer(corpus), max_words=settings.max_words, max_frames=settings.max_frames,
        image_size=settings.image_size,
    )
    if max_steps > 0:
        train, test = load_retrieval_dataset(corpus, "train"), load_retrieval_dataset(corpus, "test")
        train_variant("glccl", VARIANTS["glccl"], train, test, processor, settings, work)
    else:  # the untrained model: the page and its parts as they are, the ranking itself meaningless
        torch.manual_seed(settings.seed)
        GLCCLModel(demo_config(processor.tokenizer, settings)).save_pretrained(work / "glccl")
    processor.save_pretrained(work / "glccl")
    index = VideoIndex.create(work / "index", work / "glccl", segment_seconds=6.0)
    index.add(str(corpus / "test"), progress=False)
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
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1250"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get("http://127.0.0.1:7861/")
        box = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#glccl-query textarea"))
        box.send_keys(QUERY)
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
