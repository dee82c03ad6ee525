"""The Gradio search app at API level: launched on a free local port and queried with gradio_client; bounds,
messages, the selected hit's details, and the file route refusing every path but the indexed videos."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

pytest.importorskip("gradio")
from app_fixtures import launched, synthetic_index  # noqa: E402
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from PIL import Image  # noqa: E402

from glccl_hf.search import VideoIndex  # noqa: E402
from glccl_hf.search.app import MAX_K, MAX_QUERY_CHARS, SearchService, build_app  # noqa: E402
from glccl_hf.search.results_page import hit_caption  # noqa: E402

QUERY = "a red circle moves left on a blue background"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VideoIndex:
    return synthetic_index(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def served(index):
    app = build_app(index)
    with launched(app) as url:
        yield app, url, Client(url, verbose=False, download_files=str(index.root.parent / "downloads"))


def status_of(url: str, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}gradio_api/file={urllib.parse.quote(path)}") as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_hits_come_back_with_thumbnails_in_score_order(served, index):
    _, _, client = served
    gallery, message, player, strip, details = client.predict(QUERY, 4, api_name="/search")
    expected = index.search(QUERY, k=4)
    assert [item["caption"] for item in gallery] == [hit_caption(hit) for hit in expected]
    for item in gallery:
        with Image.open(item["image"]) as image:
            assert image.format == "JPEG" and image.size == (64, 64)  # the video's frame, not a placeholder
            assert np.asarray(image).std() > 0
    assert message.startswith(f"4 hits for “{QUERY}” among 6 segments")
    assert (player, strip, details) == ("", None, "")


def test_empty_query_long_query_and_bad_k_get_messages_not_tracebacks(served):
    _, _, client = served
    gallery, message, *_ = client.predict("   ", 4, api_name="/search")
    assert gallery == [] and message.startswith("Type what you are looking for")
    gallery, message, *_ = client.predict("a" * (MAX_QUERY_CHARS + 1), 4, api_name="/search")
    assert gallery == [] and f"at most {MAX_QUERY_CHARS}" in message
    gallery, message, *_ = client.predict(QUERY, 2.5, api_name="/search")
    assert gallery == [] and f"k must be a whole number from 1 to {MAX_K}" in message
    for k in (float("inf"), float("nan"), "8", None):  # what a crafted API call may send
        assert "k must be a whole number" in SearchService(served[0].service.index).search(QUERY, k).message
    with pytest.raises(AppError, match="greater than maximum"):  # the slider's own bound, shown as an error toast
        client.predict(QUERY, MAX_K + 1, api_name="/search")


def test_only_indexed_videos_are_served_and_only_on_the_video_route(served, index):
    app, url, _ = served
    assert app.server_name == "127.0.0.1" and not app.share
    video = index.videos()[0]
    neighbour = os.path.join(os.path.dirname(video), "metadata.csv")  # a file next to an indexed video
    assert os.path.isfile(neighbour)
    # Gradio's file route serves none of them, the indexed videos included.
    for path in ("/etc/passwd", video, neighbour, os.path.join(os.path.dirname(video), "..", "train", "metadata.csv"),
                 str(index.root / "manifest.json")):
        assert status_of(url, path) == 403, path
    # The video route serves indexed file N for this app's token only, with byte ranges (for seeking).
    service = app.service
    number = service.video_files.index(video)
    with urllib.request.urlopen(f"{url}{service.video_url(video)}") as response:
        assert response.status == 200 and response.read() == open(video, "rb").read()
    ranged = urllib.request.Request(f"{url}{service.video_url(video)}", headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(ranged) as response:
        assert response.status == 206 and response.read() == open(video, "rb").read()[10:20]
    for path in (f"glccl/video/{'x' * 22}/{number}", f"glccl/video/{service.video_token}/{len(service.video_files)}",
                 f"glccl/video/{service.video_token}/-1", f"glccl/video/{service.video_token}/..%2F..%2Fetc%2Fpasswd"):
        try:
            urllib.request.urlopen(f"{url}{path}")
            raise AssertionError(f"{path} was served")
        except urllib.error.HTTPError as err:
            assert err.code in (404, 422), path


def test_empty_index_says_so(tmp_path, index):
    empty = VideoIndex.create(tmp_path / "empty", index.model, index.processor)
    service = SearchService(empty)
    assert "index is empty" in service.summary()
    results = service.search(QUERY, 4)
    assert results.gallery == [] and "index is empty" in results.message


def test_no_good_match_says_so_with_the_best_score(index):
    best = index.search(QUERY, k=1)[0].score
    results = SearchService(index, min_score=best + 1.0).search(QUERY, 4)
    assert results.gallery == [] and results.message.startswith("No segment matches")
    assert f"best score {best:.2f}" in results.message
    assert len(SearchService(index, min_score=best - 1e-3).search(QUERY, 4).gallery) >= 1


def test_selected_hit_plays_from_its_start_and_shows_its_frame_weights(index):
    service = SearchService(index)
    results = service.search(QUERY, 3)
    hit = results.hits[1]
    player, strip, details = service.details(results.query, results.hits, 1)
    assert f'src="{service.video_url(hit.video)}#t={hit.start:.3f}"' in player
    times, weights = index.frame_weights(QUERY, hit.segment_id)
    assert abs(sum(weights) - 1) < 1e-4 and len(times) >= 2
    assert strip.width > len(times) * 96  # one tile per sampled frame
    assert os.path.basename(hit.video) in details and f"{hit.best_time:.1f} s" in details
    assert service.details(results.query, results.hits, 7)[0] == ""  # out-of-range ranks open nothing
    assert service.details(results.query, results.hits, "../../etc/passwd")[0] == ""
