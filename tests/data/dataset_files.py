"""Annotation files and folders written for the loader tests (videos are empty files: loaders check only paths)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets

COLUMNS = ["video", "video_id", "caption", "video_index", "caption_index"]


def touch(folder: Path, *names: str) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def rows(ds: datasets.Dataset) -> list[tuple]:
    """[rows] (video, video_id, caption, video_index, caption_index): a split in the schema, row by row."""
    return list(zip(*(ds[c] for c in COLUMNS), strict=True))


def vatex_captions(vid: str) -> list[str]:
    return [f"{vid} english caption {k}" for k in range(10)]
