"""glccl-search search --html (a static results page) and glccl-search serve (the page, on 127.0.0.1 by default)."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_fixtures import free_port
from PIL import Image
from search_fixtures import corpus_and_tokenizer, save_checkpoint, tiny_processor, tiny_search_model

from glccl_hf.search import VideoIndex
from glccl_hf.search.cli import build_parser, main

QUERY = "a red circle moves left on a blue background"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app_cli")
    corpus, tokenizer = corpus_and_tokenizer(root / "corpus", 3, 1)
    checkpoint = save_checkpoint(tiny_search_model(tokenizer), tiny_processor(tokenizer), root / "checkpoint")
    assert main(["add", "--index", str(root / "index"), "--model", str(checkpoint), str(corpus), "--no-progress"]) == 0
    return root / "index"


def test_search_html_writes_thumbnails_and_escaped_captions(index_dir, tmp_path, capsys):
    out = tmp_path / "results.html"
    odd = "<script>alert(1)</script> a green square"
    assert main(["search", "--index", str(index_dir), QUERY, odd, "-k", "3", "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    hits = VideoIndex.open(index_dir).search(QUERY, k=3)
    images = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(images) == 6  # 3 hits for each of the 2 queries
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as first:
        assert first.size == (64, 64)
    for hit in hits:
        assert f"{os.path.basename(hit.video)} · {hit.start:.1f}–{hit.end:.1f} s · score {hit.score:.2f}" in page
        assert f"file://{hit.video}#t={hit.start:.3f}" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["search", "--index", str(index_dir), QUERY, "--html", str(tmp_path / "missing" / "out.html")])


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on `port`, from /proc/net/tcp (Linux)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("no /proc/net/tcp to read the bound address from")
    found = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def test_serve_defaults_to_localhost_and_answers(index_dir):
    args = build_parser().parse_args(["serve", "--index", "x"])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    command = [sys.executable, "-m", "glccl_hf.search.cli", "serve", "--index", str(index_dir), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "glccl-search serve did not answer within 120 s"
                time.sleep(0.5)
        assert "GLCCL video search" in page
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        server.terminate()
        server.wait(timeout=30)
