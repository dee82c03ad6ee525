"""A small synthetic text-video retrieval corpus: real H.264 videos, captions and a matching CLIP tokenizer.

Each video is a sequence of scenes; a scene is a flat coloured shape moving in one direction over a flat
background. A caption describes one scene only ("a red circle moves left on a blue background"), so a caption is
partly relevant to its video, as in MSR-VTT. Nothing is downloaded: demos and tests run offline.

Layout written by `make_synthetic_corpus(out_dir, ...)` (a `datasets` videofolder):

    out_dir/train/metadata.csv   file_name,video_id,caption,scene,video_scenes  (one row per caption: one per scene;
                                 scene = index of the described scene, video_scenes = every scene's caption, " | ")
    out_dir/train/video00000.mp4 ...
    out_dir/test/metadata.csv    (one row per video: the caption of one of its scenes)
    out_dir/test/video00040.mp4 ...
    out_dir/tokenizer/           CLIPTokenizer (vocab.json + merges.txt + tokenizer.json)
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from transformers.convert_slow_tokenizer import bytes_to_unicode

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

# Distinct, saturated colours: a tiny model at low resolution must tell every pair apart.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 215, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
CAPTION_TEMPLATE = "a {color} {shape} moves {direction} on a {background} background"
SPLITS: tuple[str, ...] = ("train", "test")
SCENE_SEPARATOR = " | "  # joins the captions of all scenes of a video in the metadata's video_scenes column
TOKENIZER_DIR = "tokenizer"
SOT_TOKEN, EOT_TOKEN = "<|startoftext|>", "<|endoftext|>"


@dataclass(frozen=True)
class Scene:
    """One scene of a synthetic video."""

    color: str
    shape: str
    direction: str
    background: str

    @property
    def caption(self) -> str:
        return CAPTION_TEMPLATE.format(
            color=self.color, shape=self.shape, direction=self.direction, background=self.background
        )


def grammar_words() -> list[str]:
    """Every word a synthetic caption can contain."""
    words = CAPTION_TEMPLATE.format(color="", shape="", direction="", background="").split()
    return list(dict.fromkeys([*words, *COLORS, *SHAPES, *DIRECTIONS]))


def make_synthetic_corpus(
    out_dir: str | os.PathLike,
    n_train: int,
    n_test: int,
    seed: int = 0,
    *,
    scenes_per_video: int = 3,
    seconds_per_scene: int = 2,
    fps: int = 4,
    size: int = 64,
) -> Path:
    """Write the synthetic corpus (videos, metadata, tokenizer) into `out_dir` and return its path.

    Training videos get one caption per scene (``scenes_per_video`` rows each in the train split); test videos one
    caption, of a randomly chosen scene, unique within the test split. The same arguments give the same files.
    Scenes last ``seconds_per_scene`` seconds so that sampling at 1 fps sees each scene at least twice.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train={n_train}, n_test={n_test}: both splits need at least one video")
    if scenes_per_video < 1 or seconds_per_scene < 1 or fps < 1:
        raise ValueError("scenes_per_video, seconds_per_scene and fps must be >= 1")
    if size < 16 or size % 2:
        raise ValueError(f"size={size}: frames must be an even number of pixels >= 16 (H.264 4:2:0)")
    out = Path(out_dir)
    for split in SPLITS:
        if (out / split / "metadata.csv").exists():
            raise FileExistsError(f"{out / split / 'metadata.csv'} exists; write the corpus into an empty folder")
    rng = np.random.default_rng(seed)
    n_combos = len(COLORS) * (len(COLORS) - 1) * len(SHAPES) * len(DIRECTIONS)
    if n_test * scenes_per_video > n_combos // 2:
        raise ValueError(
            f"n_test={n_test} x scenes_per_video={scenes_per_video}: too many test scenes for "
            f"{n_combos} distinct captions to stay unambiguous (at most {n_combos // 2} scenes)"
        )
    test_scene_captions: set[str] = set()  # every scene of the test videos written so far
    test_query_captions: set[str] = set()  # the one caption kept per test video
    index = 0
    for split, count in (("train", n_train), ("test", n_test)):
        split_dir = out / split
        split_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for _ in range(count):
            video_id = f"video{index:05d}"
            index += 1
            if split == "train":
                scenes = _draw_scenes(rng, scenes_per_video)
                chosen = list(range(len(scenes)))
            else:
                scenes, pick = _draw_test_video(rng, scenes_per_video, test_scene_captions, test_query_captions)
                test_scene_captions.update(s.caption for s in scenes)
                test_query_captions.add(scenes[pick].caption)
                chosen = [pick]
            _write_video(split_dir / f"{video_id}.mp4", scenes, rng, seconds_per_scene, fps, size)
            every_scene = SCENE_SEPARATOR.join(s.caption for s in scenes)
            rows += [(f"{video_id}.mp4", video_id, scenes[k].caption, k, every_scene) for k in chosen]
        with open(split_dir / "metadata.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file_name", "video_id", "caption", "scene", "video_scenes"])
            writer.writerows(rows)
    write_synthetic_tokenizer(out / TOKENIZER_DIR)
    return out


def _draw_test_video(
    rng: np.random.Generator, n: int, earlier_scenes: set[str], earlier_queries: set[str]
) -> tuple[list[Scene], int]:
    """Scenes of a test video and the index of the scene its caption describes.

    A test caption must be relevant to one test video only: it may not describe a scene of another test video,
    and this video may not show a scene that an earlier test caption describes.
    """
    for _ in range(10_000):
        scenes = _draw_scenes(rng, n)
        if any(s.caption in earlier_queries for s in scenes):
            continue
        fresh = [k for k, s in enumerate(scenes) if s.caption not in earlier_scenes]
        if fresh:
            return scenes, int(fresh[rng.integers(len(fresh))])
    raise RuntimeError("could not draw an unambiguous test video; use fewer test videos or scenes")


def _draw_scenes(rng: np.random.Generator, n: int) -> list[Scene]:
    scenes: list[Scene] = []
    colors = list(COLORS)
    while len(scenes) < n:
        background = colors[rng.integers(len(colors))]
        color = colors[rng.integers(len(colors))]
        if color == background:
            continue
        # Consecutive scenes change background, so a scene cut is visible in every frame pair.
        if scenes and scenes[-1].background == background:
            continue
        scenes.append(
            Scene(color, SHAPES[rng.integers(len(SHAPES))], DIRECTIONS[rng.integers(len(DIRECTIONS))], background)
        )
    return scenes


def render_scene_frame(
    scene: Scene, progress: float, size: int, center_jitter: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """RGB frame [size, size, 3] uint8 of `scene` with the shape `progress` (0..1) along its path."""
    frame = np.empty((size, size, 3), np.uint8)
    frame[:] = COLORS[scene.background]
    travel = 0.5 * (progress - 0.5)  # centre moves from 0.25 to 0.75 of the frame (or back)
    dx = {"left": -travel, "right": travel}.get(scene.direction, 0.0)
    dy = {"up": -travel, "down": travel}.get(scene.direction, 0.0)
    cx = (0.5 + dx + center_jitter[0]) * size
    cy = (0.5 + dy + center_jitter[1]) * size
    r = 0.2 * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if scene.shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    elif scene.shape == "square":
        mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    else:  # triangle, apex up: inside when below both slanted edges and above the base
        top, bottom = cy - r, cy + r
        half_width = (yy - top) / (2 * r) * r
        mask = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half_width)
    frame[mask] = COLORS[scene.color]
    return frame


def _write_video(path: Path, scenes: list[Scene], rng: np.random.Generator, seconds: int, fps: int, size: int) -> None:
    frames_per_scene = seconds * fps

    def frames() -> Iterator[np.ndarray]:
        for scene in scenes:
            jitter = tuple(float(v) for v in rng.uniform(-0.05, 0.05, size=2))
            for k in range(frames_per_scene):
                yield render_scene_frame(scene, k / max(frames_per_scene - 1, 1), size, jitter)

    # One thread and no timestamps in the file: same seed, same bytes.
    options = {"preset": "ultrafast", "crf": "18", "threads": "1"}
    encode_video(path, frames(), fps=fps, options=options, container_format="mp4")


def encode_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    *,
    fps: int,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    container_format: str | None = None,
) -> Path:
    """Encode RGB frames (uint8 [H, W, 3], all one size) with PyAV at a constant `fps` and return the file's path.

    Frame i is stamped i / fps. Frames are encoded as they come, so `frames` may be a generator of a long video.
    ``container_format`` defaults to what the file's extension says; ``options`` are the codec's (e.g. libx264's
    ``{"preset": "ultrafast", "crf": "18", "threads": "1"}``).
    """
    images = iter(frames)
    first = next(images, None)
    if first is None:
        raise ValueError(f"{path}: no frames to encode")
    container = av.open(str(path), mode="w", format=container_format)
    try:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = dict(options)
        stream.codec_context.time_base = Fraction(1, fps)
        for pts, image in enumerate(itertools.chain([first], images)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return Path(path)


# --------------------------------------------------------------------------------------------------------------
# Tokenizer: CLIP's byte-level BPE with a vocabulary just big enough for the caption grammar.


def clip_vocab(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary for a merge list: the 256 byte characters (so id 0 is "!"), their ``</w>`` forms, one
    entry per merge (its two halves joined), then ``<|startoftext|>`` and ``<|endoftext|>``."""
    # CLIP / GPT-2's reversible byte -> printable character table, in the order CLIP's vocabulary lists it.
    byte_chars = list(bytes_to_unicode().values())
    vocab_list = [*byte_chars, *(c + "</w>" for c in byte_chars), *(a + b for a, b in merges), SOT_TOKEN, EOT_TOKEN]
    return {tok: i for i, tok in enumerate(vocab_list)}


def write_clip_tokenizer(
    out_dir: str | os.PathLike, merges: Sequence[tuple[str, str]], *, model_max_length: int = 77
) -> CLIPTokenizer:
    """Write a CLIP-format tokenizer for `merges` into `out_dir` and return it (a ``CLIPTokenizer``).

    The folder gets vocab.json (:func:`clip_vocab`) and merges.txt, which are enough for
    ``CLIPTokenizer.from_pretrained``, plus what the tokenizer's ``save_pretrained`` writes (tokenizer.json, ...).
    ``model_max_length`` defaults to CLIP's 77 positions.
    """
    from transformers import CLIPTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merges = [(a, b) for a, b in merges]
    vocab = clip_vocab(merges)
    with open(out / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(out / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    tokenizer.save_pretrained(out)
    return tokenizer


def _bpe(word: tuple[str, ...], ranks: dict[tuple[str, str], int]) -> tuple[str, ...]:
    # CLIP's merge rule: repeatedly merge the adjacent pair with the lowest rank.
    while len(word) > 1:
        pairs = [(ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(word, word[1:], strict=False))]
        pairs = [(r, i) for r, i in pairs if r is not None]
        if not pairs:
            break
        best = min(pairs)[0]
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i + 1 < len(word) and ranks.get((word[i], word[i + 1])) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
    return word


def synthetic_vocab_and_merges(words: list[str] | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP-format vocabulary and merges in which every grammar word is one token ``word</w>``.

    Order as in CLIP: the 256 byte characters (so id 0 is "!"), their ``</w>`` forms, one entry per merge, then
    ``<|startoftext|>`` and ``<|endoftext|>``. Merges are added word by word; a new merge ranks after all earlier
    ones, so it never changes how an earlier word splits.
    """
    words = grammar_words() if words is None else words
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for w in words:
        if not w.isascii() or not w.isalpha() or w != w.lower():
            raise ValueError(f"grammar word {w!r}: lower-case ASCII letters only")
        if len(w) == 1:
            continue  # "a</w>" is already a byte token
        while True:
            pieces = _bpe(tuple(w[:-1]) + (w[-1] + "</w>",), ranks)
            if len(pieces) == 1:
                break
            pair = (pieces[0], pieces[1])
            ranks[pair] = len(merges)
            merges.append(pair)
    return clip_vocab(merges), merges


def write_synthetic_tokenizer(out_dir: str | os.PathLike) -> Path:
    """Write vocab.json + merges.txt for the grammar and save a CLIPTokenizer built from them into `out_dir`."""
    _, merges = synthetic_vocab_and_merges()
    write_clip_tokenizer(out_dir, merges)
    return Path(out_dir)


def load_synthetic_tokenizer(corpus_dir: str | os.PathLike):
    """The CLIPTokenizer that `make_synthetic_corpus` saved under ``<corpus_dir>/tokenizer``."""
    from transformers import CLIPTokenizer

    path = Path(corpus_dir) / TOKENIZER_DIR
    if not (path / "vocab.json").is_file():
        raise FileNotFoundError(f"{path}: no synthetic tokenizer (vocab.json) here; run make_synthetic_corpus first")
    return CLIPTokenizer.from_pretrained(str(path))
