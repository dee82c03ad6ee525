"""The files a dataset folder holds, read strictly: csv as text, JSON, and paths kept inside their folder."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CsvTable:
    """A csv file read as text: the header (names stripped) and one dict per data row."""

    fieldnames: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)


def read_csv(path: Path) -> CsvTable:
    """Every cell as written (an id like "001" stays "001"); a row with more fields than the header is an error."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation csv not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = [c.strip() for c in reader.fieldnames or []]
    for i, row in enumerate(rows):
        if None in row:  # DictReader files surplus fields under the key None
            raise ValueError(f"{path}: data row {i + 1} has more fields than the header {header}")
    return CsvTable(header, [{k.strip(): v for k, v in r.items()} for r in rows])


def read_json(path: Path) -> Any:
    """The parsed file; a missing file or invalid JSON is an error naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation json not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether `path` lies under `root`, judged on the written paths."""
    # Lexical check (no symlink resolution): a dataset may keep its videos behind a symlink inside its folder.
    path, root = os.path.abspath(path), os.path.abspath(root)
    return os.path.commonpath([path, root]) == root


def file_inside(root: Path, name: str, option: str) -> Path:
    """The file an option names, relative to `root` unless absolute; refused when it lies outside `root`."""
    path = Path(name) if os.path.isabs(name) else root / name
    if not is_inside(path, root):
        raise ValueError(f"{option}={name!r} points outside the dataset folder {root}")
    return path
