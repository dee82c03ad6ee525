"""The search page in headless Chromium (the system package and its driver): starting the browser and timing one
query's answer. Used by `bench.app_latency`, the browser test and `docs/search_app_screenshot.py`."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Captions in the synthetic corpus's vocabulary.
QUERIES = [
    "a red circle moves left on a blue background",
    "a green square moves up",
    "a yellow triangle on a black background",
    "a blue circle moves right",
    "a white square moves down on a red background",
    "a black triangle moves left",
    "a red square on a green background",
    "a yellow circle moves up on a white background",
    "a blue triangle moves down",
]

# Type the query, click Search, then wait (every animation frame) until the message names this query and all k
# thumbnails have loaded; returns [the milliseconds in between, as the browser measured them, the page's message].
ANSWER_TIME_JS = """
const [query, k, done] = arguments;
const box = document.querySelector('#glccl-query textarea');
box.value = query;
box.dispatchEvent(new Event('input', {bubbles: true}));
const start = performance.now();
document.querySelector('#glccl-search').click();
const message = () => document.querySelector('#glccl-message').innerText;
const ready = () => {
  const images = [...document.querySelectorAll('#glccl-gallery img')];
  return message().includes('hits for “' + query + '”') && images.length === k
    && images.every((image) => image.complete && image.naturalWidth > 0);
};
const poll = () => ready() ? done([performance.now() - start, message()]) : requestAnimationFrame(poll);
poll();
"""


def headless_chromium(window_size: str, script_timeout: float | None = None) -> webdriver.Chrome:
    """Headless Chromium with a `window_size` ("WIDTH,HEIGHT") window; the caller quits it."""
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={window_size}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if script_timeout is not None:
        driver.set_script_timeout(script_timeout)
    return driver


def open_search_page(driver: webdriver.Chrome, url: str, timeout: float = 30) -> None:
    """Load the page and wait for its query box."""
    driver.get(url)
    WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#glccl-query textarea"))


def answer_time(driver: webdriver.Chrome, query: str, k: int) -> tuple[float, str]:
    """Milliseconds from the click on Search until `k` thumbnails are loaded, and the page's message then."""
    milliseconds, message = driver.execute_async_script(ANSWER_TIME_JS, query, k)
    return milliseconds, message
