"""The documentation's Python snippets run as written, and its relative links lead to files that exist.

The documentation is README.md and every docs/*.md page. Every fenced ```python block of it is executed in its own
namespace (names do not leak from one block to the next, as a reader copying one block would find), README first and
then the pages in name order, each page's blocks in its order, all in one working folder prepared here so that every
file name and Hub id a snippet uses exists offline (a tiny CLIP stands in for the Hub's). A later block may use what
an earlier one made, as a reader following README into docs/ would have (docs/search.md's search page opens the
index README's search snippet creates). The mapping is explicit:

- ``openai/clip-vit-base-patch32``: a folder of that name holding a tiny random CLIPModel and a CLIP tokenizer, so
  ``from_pretrained`` finds it locally, as it would find a downloaded checkpoint;
- ``cooking.mp4``, ``dog.mp4``: small H.264 clips; ``ckpt/pytorch_model.bin.4``: a tiny checkpoint in the official
  GLCCL layout; ``runs/glccl-msrvtt``: a tiny GLCCL checkpoint with its processor; ``metrics.json``: what
  ``examples/evaluate_glccl.py --output metrics.json`` writes for it;
- ``data/msrvtt``, ``data/didemo``, ``data/vatex``, ``my_videofolder``, ``annotations/`` + ``videos/``: tiny corpora in
  the layouts README describes, with real clips;
- the Hub: ``datasets.load_dataset("user/video-text-dataset")`` reads a local copy, and ``HfApi`` (repository
  creation and upload) is mocked, recording what would have been pushed.

A snippet that raises fails the test with its file and line number.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import datasets
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from test_convert import official_state_dict
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from glccl_hf import GLCCLModel, GLCCLProcessor
from glccl_hf.data import encode_video, write_clip_tokenizer
from glccl_hf.data.synthetic import synthetic_vocab_and_merges

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCUMENTATION = [README, *sorted((REPO / "docs").glob("*.md"))]
HUB_DATASET = "user/video-text-dataset"
_FENCE = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the block's first line, code) for every ```python fence, in order."""
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in _FENCE.finditer(text)]


# ---------------------------------------------------------------------------------------------- the fixtures


def write_clip(path: Path, seed: int, seconds: int = 3) -> None:
    """A small H.264 clip: a square moving over a background whose colour depends on `seed`."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, 3, dtype=np.uint8)
    frames = []
    for t in range(seconds * 4):
        image = np.empty((48, 64, 3), np.uint8)
        image[:] = background
        image[10:26, 4 + 3 * t : 20 + 3 * t] = 255 - background
        frames.append(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(path, frames, fps=4)


def write_tiny_clip(folder: Path) -> None:
    """A random CLIPModel small enough for a test, saved with a CLIP tokenizer, in the layout of a Hub CLIP."""
    tokenizer = write_clip_tokenizer(folder, synthetic_vocab_and_merges()[1])
    encoder = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(
            encoder,
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(encoder, image_size=224, patch_size=56),
        projection_dim=32,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)


def write_corpora(root: Path) -> None:
    """MSR-VTT, DiDeMo and VATEX annotations, a videofolder, csv annotations and a "Hub" csv, all with real clips."""
    msrvtt = root / "data" / "msrvtt"
    for i, vid in enumerate(("video0", "video1", "video7020", "video7021", "video7022")):
        write_clip(msrvtt / "videos" / f"{vid}.mp4", seed=i)
    msrvtt.joinpath("MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr7020,video7020,a man is cooking\nret1,msr7021,video7021,a dog runs\nret2,msr7022,video7022,cars\n"
    )
    msrvtt.joinpath("MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\n")
    msrvtt.joinpath("MSRVTT_train.7k.csv").write_text("video_id\nvideo1\n")
    sentences = [{"video_id": v, "caption": f"{c} {v}", "sen_id": i} for i, (v, c) in enumerate(
        [("video0", "a car drives"), ("video1", "a cat sleeps"), ("video0", "a red car"), ("video1", "a cat")]
    )]  # fmt: skip
    msrvtt.joinpath("MSRVTT_data.json").write_text(json.dumps({"videos": [], "sentences": sentences}))

    didemo = root / "data" / "didemo"
    for i, vid in enumerate(("d0.mp4", "d1.mp4")):
        write_clip(didemo / "videos" / vid, seed=10 + i)
    didemo.joinpath("test_list.txt").write_text("d0.mp4\nd1.mp4\n")
    moments = [{"video": "d0.mp4", "description": "a man walks"}, {"video": "d0.mp4", "description": "he stops"}]
    moments.append({"video": "d1.mp4", "description": "a dog jumps"})
    didemo.joinpath("test_data.json").write_text(json.dumps(moments))

    vatex = root / "data" / "vatex"
    for i, vid in enumerate(("x0", "x1")):
        write_clip(vatex / "videos" / f"{vid}.mp4", seed=20 + i)
    vatex.joinpath("test_list.txt").write_text("x0\nx1\n")
    vatex.joinpath("vatex_data.json").write_text(
        json.dumps({vid: {"enCap": [f"caption {k} of {vid}" for k in range(10)]} for vid in ("x0", "x1")})
    )

    folder = root / "my_videofolder" / "train"
    for i in range(2):
        write_clip(folder / f"v{i}.mp4", seed=30 + i)
    folder.joinpath("metadata.csv").write_text("file_name,caption\nv0.mp4,a ball rolls\nv1.mp4,a kite flies\n")

    for i in range(2):
        write_clip(root / "videos" / f"c{i}.mp4", seed=40 + i)
    (root / "annotations").mkdir()
    root.joinpath("annotations", "test.csv").write_text("clip,text,vid\nc0.mp4,a boat sails,c0\nc1.mp4,rain,c1\n")
    hub_copy = root / "hub" / HUB_DATASET
    hub_copy.mkdir(parents=True)
    hub_copy.joinpath("test.csv").write_text("video,caption\nc0.mp4,a boat sails\nc1.mp4,rain falls\n")


def write_glccl_run(root: Path) -> None:
    """runs/glccl-msrvtt: a GLCCL from the tiny CLIP with its processor, and metrics.json from the evaluation script."""
    clip = root / "openai" / "clip-vit-base-patch32"
    run = root / "runs" / "glccl-msrvtt"
    model = GLCCLModel.from_clip_pretrained(str(clip), max_words=16, max_frames=4)
    model.save_pretrained(run)
    GLCCLProcessor(CLIPTokenizer.from_pretrained(clip), max_words=16, max_frames=4).save_pretrained(run)
    spec = importlib.util.spec_from_file_location("evaluate_glccl", REPO / "examples" / "evaluate_glccl.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = [str(run), str(root / "data" / "msrvtt"), "--device", "cpu", "--no_progress"]
    script.main(argv + ["--output", str(root / "metrics.json")])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    write_tiny_clip(root / "openai" / "clip-vit-base-patch32")
    write_clip(root / "cooking.mp4", seed=50)
    write_clip(root / "dog.mp4", seed=51)
    (root / "ckpt").mkdir()
    torch.save(official_state_dict(), root / "ckpt" / "pytorch_model.bin.4")
    write_corpora(root)
    write_glccl_run(root)
    return root


@pytest.fixture
def offline_hub(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The Hub as the snippets reach it: a dataset id read from a local copy, uploads recorded instead of sent."""
    load_dataset = datasets.load_dataset

    def local_load_dataset(path: str, *args: Any, **kwargs: Any) -> Any:
        return load_dataset(str(workdir / "hub" / path) if path == HUB_DATASET else path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", local_load_dataset)
    pushed: dict[str, list[str]] = {}

    def upload_folder(self: HfApi, *, repo_id: str, folder_path: str, **kwargs: Any) -> str:
        pushed[repo_id] = sorted(p.name for p in Path(folder_path).iterdir())
        return f"https://huggingface.co/{repo_id}/commit/0"

    def create_repo(self: HfApi, repo_id: str, **kwargs: Any) -> Any:
        return mock.MagicMock(repo_id=repo_id)

    with (
        mock.patch.object(HfApi, "create_repo", autospec=True, side_effect=create_repo),
        mock.patch.object(HfApi, "create_branch", autospec=True),
        mock.patch.object(HfApi, "upload_folder", autospec=True, side_effect=upload_folder),
        mock.patch.object(HfApi, "create_commit", autospec=True, side_effect=AssertionError("unexpected commit")),
    ):
        yield pushed


def serve_briefly(monkeypatch) -> list[str]:
    """README's `app.launch()` serves until stopped: here it starts on a free local port, is recorded, and closes."""
    import socket

    import gradio

    launch = gradio.Blocks.launch
    launched: list[str] = []

    def launch_and_close(self, *args, **kwargs):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            kwargs.setdefault("server_port", probe.getsockname()[1])
        kwargs["prevent_thread_lock"] = True
        result = launch(self, *args, **kwargs)
        launched.append(self.local_url)
        self.close()
        return result

    monkeypatch.setattr(gradio.Blocks, "launch", launch_and_close)
    return launched


# ------------------------------------------------------------------------------------------------- the tests


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_readme_has_python_snippets() -> None:
    blocks = [(page, line) for page in DOCUMENTATION for line, _ in python_blocks(page.read_text())]
    assert len(blocks) >= 10, blocks
    assert python_blocks(README.read_text()), "README.md needs its runnable snippets"
    for page in DOCUMENTATION:
        text = page.read_text()
        assert text.count("```python") == len(python_blocks(text)), relative(page)  # none missed by the pattern


def test_readme_python_snippets_run(workdir: Path, offline_hub: dict[str, list[str]], monkeypatch) -> None:
    monkeypatch.chdir(workdir)
    launched = serve_briefly(monkeypatch)
    for page in DOCUMENTATION:
        for line, code in python_blocks(page.read_text()):
            namespace = {"__name__": "__readme__"}
            where = f"{relative(page)} (block at line {line})"
            try:
                exec(compile(code, where, "exec"), namespace)  # noqa: S102
            except Exception as err:
                raise AssertionError(f"{relative(page)}'s python block at line {line} failed:\n{code}") from err
    assert launched and launched[0].startswith("http://127.0.0.1:"), launched  # the search page's snippet served
    # The Hub snippet's push happened, with everything a checkpoint needs.
    [(repo_id, files)] = offline_hub.items()
    assert repo_id == "me/glccl-msrvtt"
    assert {"README.md", "config.json", "model.safetensors", "modeling_glccl.py"} <= set(files)


def test_fixture_names_are_the_readme_names() -> None:
    """The explicit mapping above stays in step with the documentation: every stand-in is used there."""
    text = "\n".join(page.read_text() for page in DOCUMENTATION)
    names = ["openai/clip-vit-base-patch32", "cooking.mp4", "dog.mp4", "ckpt/pytorch_model.bin.4",
             "runs/glccl-msrvtt", "metrics.json", "data/msrvtt", "data/didemo", "data/vatex", "my_videofolder",
             "annotations/", HUB_DATASET]  # fmt: skip
    for name in names:
        assert name in text, name


# ------------------------------------------------------------------------------------------------- the links

_FENCED = re.compile(r"^```.*?^```$", re.DOTALL | re.MULTILINE)
_CODE = re.compile(_FENCED.pattern + r"|`[^`\n]*`", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def markdown_links(text: str) -> list[str]:
    """The targets of the Markdown links and images of `text`, code blocks and code spans left out."""
    return _LINK.findall(_CODE.sub("", text))


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of `text`: lower case, punctuation dropped, spaces as hyphens."""
    headings = _HEADING.findall(_FENCED.sub("", text))  # a heading's code spans keep their text
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` whose file does not exist, or whose #anchor names no heading of that file."""
    broken = []
    for target in markdown_links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not a file of this repository
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in heading_anchors(file.read_text()):
            broken.append(target)
    return broken


def test_link_checker_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Frame cache (`cache_frames`)\n")
    index = tmp_path / "README.md"
    index.write_text(
        "[ok](docs/page.md) [ok](docs/page.md#frame-cache-cache_frames) [web](https://example.org/x.md)\n"
        "[gone](docs/missing.md) [bad anchor](docs/page.md#nothing) ![picture](docs/missing.png)\n"
        "`[in code](docs/also-missing.md)`\n```\n[in a block](docs/also-missing.md)\n```\n"
    )
    assert broken_links(index) == ["docs/missing.md", "docs/page.md#nothing", "docs/missing.png"]


@pytest.mark.parametrize("page", DOCUMENTATION, ids=relative)
def test_relative_links_lead_to_existing_files(page: Path) -> None:
    assert markdown_links(page.read_text()) or page != README, "README.md links to its pages"
    assert broken_links(page) == [], f"{relative(page)} links to what does not exist"
