"""The glccl-search console script: add (creating the index), search --json, remove, status, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from search_fixtures import corpus_and_tokenizer, save_checkpoint, tiny_processor, tiny_search_model
from video_fixtures import write_garbage

from glccl_hf.search.cli import main

HIT_FIELDS = {"video", "start", "end", "score", "segment_id", "best_time"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cli")
    corpus, tokenizer = corpus_and_tokenizer(root / "corpus", 4, 2)
    checkpoint = save_checkpoint(tiny_search_model(tokenizer), tiny_processor(tokenizer), root / "checkpoint")
    videos = root / "videos"
    videos.mkdir()
    for path in sorted(corpus.glob("*/*.mp4")):
        (videos / path.name).write_bytes(path.read_bytes())
    return root, checkpoint, videos


def test_add_search_remove_status(setup, tmp_path, capsys):
    _, checkpoint, videos = setup
    index = str(tmp_path / "index")
    with pytest.raises(SystemExit, match="give --model"):
        main(["add", "--index", index, str(videos)])

    assert main(["add", "--index", index, "--model", str(checkpoint), str(videos)]) == 0
    captured = capsys.readouterr()
    assert "indexed 6 videos (6 segments), 0 unchanged, 0 failed" in captured.out
    assert "Indexing videos" in captured.err and "6/6" in captured.err  # one progress bar with its total

    queries = ["a red circle moves left on a blue background", "a green square"]
    assert main(["search", "--index", index, *queries, "-k", "4", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        hits = json.loads(line)
        assert len(hits) == 4 and all(set(hit) == HIT_FIELDS for hit in hits)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert all(Path(h["video"]).parent == videos for h in hits)

    assert main(["search", "--index", index, queries[0], "-k", "2"]) == 0
    assert capsys.readouterr().out.count(str(videos)) == 2

    first = sorted(videos.glob("*.mp4"))[0]
    assert main(["remove", "--index", index, str(first)]) == 0
    assert "removed 1 segments; the index holds 5" in capsys.readouterr().out
    assert main(["status", "--index", index, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["segments"] == 5 and status["removed_segments"] == 1
    assert status["model"]["name_or_path"] == str(checkpoint)
    assert main(["status", "--index", index]) == 0
    assert "5 segments from 5 videos" in capsys.readouterr().out


def test_add_exits_non_zero_after_indexing_the_good_files_and_lists_the_bad_ones(setup, tmp_path, capsys):
    _, checkpoint, videos = setup
    bad = tmp_path / "bad"
    bad.mkdir()
    write_garbage(bad / "garbage.mp4")
    (bad / "empty.webm").write_bytes(b"")
    index = str(tmp_path / "index")
    code = main(["add", "--index", index, "--model", str(checkpoint), "--no-progress", str(bad), str(videos)])
    captured = capsys.readouterr()
    assert code == 1
    assert "indexed 6 videos (6 segments), 0 unchanged, 2 failed" in captured.out
    assert f"failed: {bad / 'garbage.mp4'}: " in captured.err and f"failed: {bad / 'empty.webm'}: " in captured.err
    # Rerun: the good files are unchanged, the bad ones fail again.
    assert main(["add", "--index", index, "--no-progress", str(bad), str(videos)]) == 1
    assert "indexed 0 videos (0 segments), 6 unchanged, 2 failed" in capsys.readouterr().out


def test_the_installed_console_script_prints_json(setup, tmp_path):
    _, checkpoint, videos = setup
    script = Path(sys.executable).with_name("glccl-search")
    if not script.exists():
        pytest.skip("glccl-search is not installed in this environment (pip install -e .)")
    index = str(tmp_path / "index")
    assert main(["add", "--index", index, "--model", str(checkpoint), "--no-progress", str(videos)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [str(script), "search", "--index", index, "a red circle", "-k", "3", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and set(hits[0]) == HIT_FIELDS
