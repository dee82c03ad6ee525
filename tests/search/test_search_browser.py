"""The search page in a real browser: headless Chromium from the system packages (`make test` installs it), over an
index of 10k segments. Types a query, waits for the thumbnails, checks them against the API's hits, plays the top
hit, saves a screenshot, and prints the page's answer time (not asserted: the machine is shared and noisy)."""

from __future__ import annotations

import json
import os
import shutil
import statistics

import pytest

pytest.importorskip("gradio")
pytest.importorskip("selenium")
from app_fixtures import add_random_segments, launched, synthetic_index  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bench.browser import CHROMEDRIVER, CHROMIUM, answer_time, headless_chromium, open_search_page  # noqa: E402
from bench.browser import QUERIES as SEARCH_QUERIES  # noqa: E402
from glccl_hf.search.app import build_app  # noqa: E402
from glccl_hf.search.results_page import hit_caption  # noqa: E402

K = 8
QUERIES = SEARCH_QUERIES[:5]


def chromium_or_skip() -> None:
    """The browser from the system packages; a skip only when there is no package manager to install it with."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} / {CHROMEDRIVER} missing and no apt-get on this system to install them")
    pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} missing: `make browser` installs them (make test does it first)")


@pytest.fixture
def browser():
    chromium_or_skip()
    driver = headless_chromium("1280,1900", script_timeout=60)
    yield driver
    driver.quit()


def test_page_shows_thumbnails_plays_the_hit_and_answers_in_time(browser, tmp_path, capsys):
    index = synthetic_index(tmp_path)
    add_random_segments(index, 10_000 - len(index))
    assert len(index) == 10_000
    expected = index.search(QUERIES[0], k=K)
    with launched(build_app(index, k=K)) as url:
        open_search_page(browser, url)
        times_ms = [answer_time(browser, query, K)[0] for query in QUERIES]

        answer_time(browser, QUERIES[0], K)
        images = browser.find_elements(By.CSS_SELECTOR, "#glccl-gallery img")
        captions = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#glccl-gallery .caption-label")]
        assert len(images) == K
        assert captions[0] == hit_caption(expected[0]) and os.path.basename(expected[0].video) in captions[0]
        assert captions == [hit_caption(hit) for hit in expected]

        images[0].click()
        player = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "glccl-player"))
        assert player.get_attribute("data-start") == f"{expected[0].start:.3f}"
        # The browser fetched the indexed file through the file route and can play it (metadata loaded, no error).
        state = WebDriverWait(browser, 30).until(
            lambda d: d.execute_script(
                "const v = document.getElementById('glccl-player'); "
                "return v.readyState >= 1 || v.error ? [v.readyState, v.error] : null"
            )
        )
        assert state[1] is None
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#glccl-strip img"))
        assert "best moment at" in browser.find_element(By.ID, "glccl-details").text
        assert browser.save_screenshot(str(tmp_path / "search_app.png"))

    record = {"segments": len(index), "k": K, "first_ms": times_ms[0], "next_ms": statistics.median(times_ms[1:])}
    (tmp_path / "latency.json").write_text(json.dumps(record))
    with capsys.disabled():
        print(
            f"\nsearch page answer time (browser, tiny model, {len(index)} segments, k={K}): "
            f"first {times_ms[0]:.0f} ms, then median {record['next_ms']:.0f} ms"
        )
