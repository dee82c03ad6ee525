"""A Gradio page over a video index: type a query, see the matching moments as thumbnails, play one from its
segment's start, and see which of its sampled frames GLIM weighted for the query.

    from glccl_hf.search import VideoIndex
    from glccl_hf.search.app import build_app
    build_app(VideoIndex.open("my_index")).launch()  # http://127.0.0.1:7860

Needs the `app` extra (`pip install glccl-hf[app]`); nothing else in the package imports Gradio.

Security: `launch` binds 127.0.0.1 unless told otherwise and never shares unless asked. The page's only inputs are
the query text, k and the rank of a shown hit; no path from a client is ever opened. Gradio's file route is given no
extra paths; the indexed video files are served by one route of their own, `glccl/video/TOKEN/N`, which answers only
for N < the number of indexed files and the random TOKEN of this app (handed out in the page, so Gradio's `auth`
still guards the videos). Thumbnails and frame strips are made in memory.
"""

from __future__ import annotations

import html
import importlib.util
import mimetypes
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

try:
    import gradio as gr
except ImportError as err:  # the app is an optional extra
    raise ImportError("the search app needs Gradio: pip install 'glccl-hf[app]'") from err
from fastapi import Response
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from PIL import Image

from .index import SearchHit, VideoIndex
from .results_page import hit_caption
from .thumbnails import STRIP_HEIGHT, ThumbnailCache, frame_strip, frames_at, playable_file

# Bounds on what a client may ask for: a CLIP query is at most a few dozen words, and a page of thumbnails is small.
MAX_QUERY_CHARS = 300
MAX_K = 50
DEFAULT_K = 8
DEFAULT_HOST = "127.0.0.1"
VIDEO_ROUTE = "glccl/video"
TITLE = "GLCCL video search"
# Captions wrap instead of being cut off (the score is at their end).
_CSS = "#glccl-gallery .caption-label { white-space: normal; overflow: visible; text-overflow: clip; }"


def check_query(query: Any) -> str:
    """The query stripped of surrounding space; ValueError when it is not text or longer than MAX_QUERY_CHARS."""
    if not isinstance(query, str):
        raise ValueError(f"the query must be text, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"the query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are accepted")
    return query.strip()


def check_k(k: Any) -> int:
    """k as an int in [1, MAX_K]; ValueError otherwise (a slider sends floats such as 8.0)."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 1 <= k <= MAX_K or k != int(k):
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return int(k)


@dataclass
class Results:
    """What one query puts on the page: `(thumbnail, caption)` pairs best first, a message, and the hits (kept on the
    server, per session) that a later selection refers to by rank."""

    gallery: list[tuple[Image.Image, str]]
    message: str
    query: str
    hits: list[SearchHit]


class SearchService:
    """The page's logic without Gradio: search with bounds and messages, thumbnails, and a selected hit's details.

    Args:
        index: the index to search.
        min_score: hits scoring below it are not shown (None: show the k best whatever their score); when none is
            left the page says that nothing matches well.
        candidates: segments scored exactly per query (the index's default when None).
    """

    def __init__(self, index: VideoIndex, *, min_score: float | None = None, candidates: int | None = None) -> None:
        self.index = index
        self.min_score = min_score
        self.candidates = candidates
        self.thumbnails = ThumbnailCache()
        # The files the video route may serve, by number; the token makes their URLs unguessable.
        self.video_files = [path for path in map(playable_file, index.videos()) if path is not None]
        self._video_numbers = {path: number for number, path in enumerate(self.video_files)}
        self.video_token = secrets.token_urlsafe(16)

    def summary(self) -> str:
        segments = len(self.index)
        if segments == 0:
            return self.empty_message()
        return f"Search {segments:,} segments from {len(self.index.videos()):,} videos."

    @staticmethod
    def empty_message() -> str:
        return "The index is empty: add videos first with `glccl-search add --index DIR VIDEOS...`."

    def search(self, query: Any, k: Any) -> Results:
        """The k best hits for `query` with their thumbnails, or an empty gallery and a message saying why."""
        try:
            text, k = check_query(query), check_k(k)
        except ValueError as err:
            return Results([], f"**Not searched:** {err}.", "", [])
        if len(self.index) == 0:
            return Results([], self.empty_message(), text, [])
        if not text:
            return Results([], "Type what you are looking for, e.g. *a man is cooking*.", text, [])
        start = time.perf_counter()
        features = self.index.encode_queries([text])
        hits = self.index.search_features(features, k, candidates=self.candidates)[0]
        shown = hits if self.min_score is None else [hit for hit in hits if hit.score >= self.min_score]
        if not shown:
            best = f" (best score {hits[0].score:.2f}, below {self.min_score:.2f})" if hits else ""
            return Results([], f"No segment matches “{html.escape(text)}” well{best}. Try other words.", text, [])
        searched = time.perf_counter()
        images = self.thumbnails.get_many([(hit.video, hit.best_time) for hit in shown])
        gallery = [(image, hit_caption(hit)) for image, hit in zip(images, shown, strict=True)]
        done = time.perf_counter()
        message = (
            f"{len(shown)} hits for “{html.escape(text)}” among {len(self.index):,} segments ({done - start:.2f} s: "
            f"search {searched - start:.2f} s, thumbnails {done - searched:.2f} s). Select one to play it."
        )
        return Results(gallery, message, text, shown)

    def details(self, query: str, hits: list[SearchHit], rank: Any) -> tuple[str, Image.Image | None, str]:
        """For the hit at `rank` of the shown results: the player (HTML), the strip of its sampled frames with their
        GLIM weights for `query`, and a line describing it."""
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < len(hits):
            return "", None, "Select a result to play it."
        hit = hits[rank]
        describe = (
            f"**{html.escape(os.path.basename(hit.video))}**, {hit.start:.1f}–{hit.end:.1f} s, score {hit.score:.2f}; "
            f"best moment at {hit.best_time:.1f} s. The strip shows the frames the model sampled from this segment and "
            "GLIM's weight of each for the query (the outlined one is the best moment)."
        )
        path = playable_file(hit.video)
        if path is None or path not in self._video_numbers:
            return f"<p>{html.escape(hit.video)}: not a video file here, nothing to play.</p>", None, describe
        times, weights = self.index.frame_weights(query, hit.segment_id)
        try:
            strip = frame_strip(frames_at(path, times, 2 * STRIP_HEIGHT), times, weights)
        except ValueError as err:
            return "", None, f"{describe}\n\n{html.escape(str(err))}"
        return player_html(self.video_url(path), hit.start), strip, describe

    def video_url(self, path: str) -> str:
        """The page-relative URL of an indexed video file on the video route."""
        return f"{VIDEO_ROUTE}/{self.video_token}/{self._video_numbers[path]}"

    def video_response(self, token: str, number: int) -> Response:
        """The video route: indexed file `number` (byte ranges supported), or 404 for anything else."""
        if not secrets.compare_digest(token, self.video_token) or not 0 <= number < len(self.video_files):
            return Response(status_code=404)
        path = self.video_files[number]
        if not os.path.isfile(path):
            return Response(status_code=404)
        return FileResponse(path, media_type=mimetypes.guess_type(path)[0] or "application/octet-stream")


def player_html(url: str, start: float) -> str:
    """A video element playing `url` from `start` seconds."""
    source = f"{url}#t={start:.3f}"
    return (
        f'<video id="glccl-player" src="{html.escape(source)}" data-start="{start:.3f}" '
        'controls autoplay muted playsinline style="width:100%;max-height:360px;background:#000"></video>'
    )


class SearchApp(gr.Blocks):
    """The search page: a gradio.Blocks whose `launch` binds 127.0.0.1 by default (or GRADIO_SERVER_NAME when set),
    never shares unless asked, and adds the route serving the indexed video files."""

    def __init__(self, service: SearchService, **kwargs: Any) -> None:
        super().__init__(title=TITLE, **kwargs)
        self.service = service
        self.video_files = service.video_files

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        # GRADIO_SERVER_NAME is how a Hugging Face Space (or an operator) asks for another address explicitly.
        kwargs.setdefault("server_name", os.environ.get("GRADIO_SERVER_NAME", DEFAULT_HOST))
        kwargs.setdefault("share", False)
        kwargs.setdefault("ssr_mode", False)
        kwargs["css"] = _CSS + "\n" + (kwargs.get("css") or "")
        # Not Gradio's allowed_paths: its file route checks every request against each allowed path (3 s per
        # request at 10k files here), and it would serve those files to clients that have not loaded the page.
        app_kwargs = dict(kwargs.get("app_kwargs") or {})
        route = APIRoute(f"/{VIDEO_ROUTE}/{{token}}/{{number}}", self.service.video_response, methods=["GET", "HEAD"])
        app_kwargs["routes"] = [route, *app_kwargs.get("routes", [])]
        kwargs["app_kwargs"] = app_kwargs
        self.warm_up()
        return super().launch(*args, **kwargs)

    def warm_up(self) -> None:
        """Pay the one-off costs before the first query: Gradio pins matplotlib's backend (when matplotlib is
        installed) around every event, and the first time imports it, which took 1-2 s here; the model's first
        forward is slower too."""
        pin_backend = getattr(gr.utils, "MatplotlibBackendMananger", None)  # sic: Gradio's spelling
        if pin_backend is not None and importlib.util.find_spec("matplotlib") is not None:
            with pin_backend():
                pass
        if len(self.service.index):
            self.service.index.encode_queries(["warm up"])


def build_app(
    index: VideoIndex, *, k: int = DEFAULT_K, min_score: float | None = None, candidates: int | None = None
) -> SearchApp:
    """The search page over `index` (see `SearchService` for `min_score` and `candidates`); `.launch()` serves it."""
    service = SearchService(index, min_score=min_score, candidates=candidates)
    app = SearchApp(service)
    with app:
        gr.Markdown(f"# {TITLE}")
        with gr.Row():
            query = gr.Textbox(
                label="Query",
                placeholder="a man is cooking",
                max_length=MAX_QUERY_CHARS,
                scale=4,
                elem_id="glccl-query",
            )
            count = gr.Slider(1, MAX_K, value=check_k(k), step=1, label="Results (k)", scale=1, elem_id="glccl-k")
            button = gr.Button("Search", variant="primary", scale=0, elem_id="glccl-search")
        message = gr.Markdown(service.summary(), elem_id="glccl-message")
        gallery = gr.Gallery(
            label="Results", columns=4, height="auto", object_fit="contain", allow_preview=False,
            format="jpeg", elem_id="glccl-gallery",
        )
        with gr.Row():
            player = gr.HTML(elem_id="glccl-player-box")
            strip = gr.Image(label="Why it matched", type="pil", interactive=False, elem_id="glccl-strip")
        details = gr.Markdown(elem_id="glccl-details")
        shown = gr.State(None)

        def run(text: str, k_value: float) -> tuple[Any, ...]:
            results = service.search(text, k_value)
            return results.gallery, results.message, (results.query, results.hits), "", None, ""

        def select(state: tuple[str, list[SearchHit]] | None, event: gr.SelectData) -> tuple[Any, ...]:
            text, hits = state if state is not None else ("", [])
            return service.details(text, hits, event.index)

        outputs = [gallery, message, shown, player, strip, details]
        button.click(run, [query, count], outputs, api_name="search")
        query.submit(run, [query, count], outputs, api_name=False)
        gallery.select(select, [shown], [player, strip, details], api_name=False)
    return app


def launch(
    index: VideoIndex,
    *,
    host: str = DEFAULT_HOST,
    port: int = 7860,
    share: bool = False,
    **options: Any,
) -> Any:
    """Build and serve the page (blocks until stopped unless `prevent_thread_lock=True` is passed)."""
    app = build_app(index, **{key: options.pop(key) for key in ("k", "min_score", "candidates") if key in options})
    return app.launch(server_name=host, server_port=port, share=share, **options)
