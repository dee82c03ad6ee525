"""Tests of GLCCLProcessor: the reference's text layout, video tensors and masks, save/load, AutoProcessor."""

from __future__ import annotations

import gzip
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from modeling_fixtures import PROCESSOR_CODE, SHARED_CODE, run_without_packages, tiny_model
from transformers import AutoProcessor, BatchFeature, CLIPTokenizer
from video_fixtures import write_flat_video, write_garbage

import glccl_hf
from glccl_hf import GLCCLConfig, GLCCLProcessor
from glccl_hf.data import write_clip_tokenizer
from glccl_hf.hub import save_for_hub
from glccl_hf.video import CLIP_MEAN, CLIP_STD, VideoDecodeError, read_frames

SOT, EOT = "<|startoftext|>", "<|endoftext|>"


# ------------------------------------------------------------------------------------------------ tokenizers


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> CLIPTokenizer:
    """A 520-token CLIP tokenizer: bytes plus a few merges (cat, dog, the)."""
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("t", "h"), ("th", "e</w>")]
    return write_clip_tokenizer(tmp_path_factory.mktemp("tiny_tok"), merges)


@pytest.fixture(scope="session")
def clip_tokenizer(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> CLIPTokenizer:
    """The real 49408-token CLIP tokenizer built from OpenAI's merges file."""
    lines = gzip.open(shared_data / "clip" / "bpe_simple_vocab_16e6.txt.gz").read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    return write_clip_tokenizer(tmp_path_factory.mktemp("clip_tok"), merges)


# ------------------------------------------------------------------------------------------------ videos


def normalised(colour: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor([(colour[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c] for c in range(3)])


COLOUR = (200, 100, 30)


@pytest.fixture(scope="module")
def flat_3s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 10 fps of one flat colour."""
    return write_flat_video(tmp_path_factory.mktemp("v") / "flat.mkv", [COLOUR] * 30)


@pytest.fixture(scope="module")
def stepped_20s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s at 2 fps; second s has red level 10 * s."""
    colours = [(10 * (i // 2), 50, 90) for i in range(40)]
    return write_flat_video(tmp_path_factory.mktemp("v") / "stepped.mkv", colours, rate=2, size=(32, 32))


# ------------------------------------------------------------------------------------------------ text


def test_text_layout(tiny_tokenizer: CLIPTokenizer) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_words=8)
    sot, eot = tiny_tokenizer.convert_tokens_to_ids([SOT, EOT])
    assert (sot, eot) == (tiny_tokenizer.bos_token_id, tiny_tokenizer.eos_token_id)
    cat = tiny_tokenizer.convert_tokens_to_ids("cat</w>")
    the = tiny_tokenizer.convert_tokens_to_ids("the</w>")
    dog = tiny_tokenizer.convert_tokens_to_ids("dog</w>")
    out = processor(text=["the cat", "The  DOG the cat the dog the cat", ""])
    assert isinstance(out, BatchFeature) and set(out) == {"input_ids", "attention_mask"}
    assert out["input_ids"].dtype == torch.long and out["input_ids"].shape == (3, 8)
    assert out["input_ids"][0].tolist() == [sot, the, cat, eot, 0, 0, 0, 0]
    assert out["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    # Truncated to max_words - 2 BPE tokens; EOT is kept at the end (lower-cased, whitespace collapsed).
    assert out["input_ids"][1].tolist() == [sot, the, dog, the, cat, the, dog, eot]
    assert out["attention_mask"][1].tolist() == [1] * 8
    assert out["input_ids"][2].tolist() == [sot, eot, 0, 0, 0, 0, 0, 0]
    # Pad id is 0 (the byte token "!"), not EOT as the tokenizer's own padding would use.
    assert tiny_tokenizer.pad_token_id != 0


def test_text_matches_tokenizer_pieces(tiny_tokenizer: CLIPTokenizer) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_words=32)
    text = "a man, his dog & 2 cats: play!"
    pieces = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert 5 < len(pieces) <= 30
    out = processor.tokenize(text)
    n = len(pieces) + 2
    assert out["input_ids"][0, :n].tolist() == [tiny_tokenizer.bos_token_id, *pieces, tiny_tokenizer.eos_token_id]
    assert out["input_ids"][0, n:].eq(0).all() and out["attention_mask"][0].sum() == n


def test_real_clip_vocabulary(clip_tokenizer: CLIPTokenizer) -> None:
    processor = GLCCLProcessor(clip_tokenizer)
    out = processor(text=["a photo of a cat", "A Photo of a DOG"])
    assert out["input_ids"][0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert out["input_ids"][1, :7].tolist() == [49406, 320, 1125, 539, 320, 1929, 49407]
    assert out["input_ids"][:, 7:].eq(0).all() and out["input_ids"].shape == (2, 32)
    long = processor(text=" ".join(["word"] * 100))["input_ids"][0]
    assert long[0] == 49406 and long[31] == 49407 and long[1:31].ne(0).all()


def test_tokenizer_without_sot_eot_is_refused(tmp_path: Path) -> None:
    # The tokenizer lays out SOT ... EOT itself (then the reference's id-0 padding): one that does not is an error.
    from tokenizers import processors

    tokenizer = write_clip_tokenizer(tmp_path, [("c", "a"), ("ca", "t</w>")])
    tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    with pytest.raises(ValueError, match="does not add SOT/EOT"):
        GLCCLProcessor(tokenizer, max_words=8)(text=["a cat"])


def test_html_entities_are_unescaped_as_openai_clip_does(tiny_tokenizer: CLIPTokenizer) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_words=12)
    plain = processor.tokenize(["the cat & the dog"])["input_ids"]
    assert torch.equal(processor.tokenize(["the cat &amp; the dog"])["input_ids"], plain)
    assert torch.equal(processor.tokenize(["the cat &amp;amp; the dog"])["input_ids"], plain)


def test_dataset_columns_are_accepted(tiny_tokenizer: CLIPTokenizer, flat_3s: Path) -> None:
    import datasets

    rows = datasets.Dataset.from_dict({"caption": ["the cat", "the dog"], "video": [str(flat_3s)] * 2})
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=3, image_size=8)
    out = processor(text=rows["caption"], videos=rows["video"])
    expected = processor(text=["the cat", "the dog"], videos=[str(flat_3s)] * 2)
    for key in ("input_ids", "pixel_values", "video_mask"):
        assert torch.equal(out[key], expected[key])


def test_text_errors(tiny_tokenizer: CLIPTokenizer) -> None:
    processor = GLCCLProcessor(tiny_tokenizer)
    with pytest.raises(TypeError, match="text"):
        processor(text=3)
    with pytest.raises(TypeError, match=r"text\[1\]"):
        processor(text=["ok", None])
    with pytest.raises(ValueError, match="text"):
        processor(text=[])
    with pytest.raises(ValueError, match="text and/or videos"):
        processor()
    with pytest.raises(TypeError, match="padding"):
        processor(text="a", padding=True)
    with pytest.raises(ValueError, match="return_tensors"):
        processor(text="a", return_tensors="tf")


# ------------------------------------------------------------------------------------------------ video


def test_flat_video_values_and_masks(tiny_tokenizer: CLIPTokenizer, flat_3s: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=12, image_size=32)
    out = processor(videos=[flat_3s])
    assert set(out) == {"pixel_values", "video_mask"}
    pixels, mask = out["pixel_values"], out["video_mask"]
    assert pixels.shape == (1, 12, 3, 32, 32) and pixels.dtype == torch.float32
    assert mask.dtype == torch.long and mask[0].tolist() == [1, 1, 1] + [0] * 9  # 3 s at 1 fps
    expected = normalised(COLOUR).view(3, 1, 1).expand(3, 32, 32)
    for i in range(3):
        assert torch.allclose(pixels[0, i], expected, atol=1e-5)
    assert pixels[0, 3:].eq(0).all()  # padding is the reference's zero array, after normalisation


def test_sampling_settings_are_used(tiny_tokenizer: CLIPTokenizer, stepped_20s: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=5, image_size=8, sample_fps=0.5)
    pixels, mask = processor.load_video(stepped_20s)
    assert mask.tolist() == [1] * 5
    # 0.5 fps over 20 s: candidates 0, 2, ..., 18 (K = 10); linspace(0, 9, 5) -> 0, 2, 4, 6, 9.
    red = pixels[:, 0, 0, 0] * CLIP_STD[0] + CLIP_MEAN[0]
    assert torch.allclose(red * 255, torch.tensor([0.0, 40.0, 80.0, 120.0, 180.0]), atol=1e-3)


def test_max_seconds_limits_sampling_to_the_start(tiny_tokenizer: CLIPTokenizer, stepped_20s: Path) -> None:
    # DiDeMo in the reference: only seconds 0-31 are sampled. Here: the first 8 s of 20, at 1 fps -> t = 0..7.
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=4, image_size=8, max_seconds=8)
    pixels, mask = processor.load_video(stepped_20s)
    assert mask.tolist() == [1] * 4
    # K = 8 candidates, linspace(0, 7, 4) -> 0, 2, 4, 7 s; red level is 10 per second.
    red = pixels[:, 0, 0, 0] * CLIP_STD[0] + CLIP_MEAN[0]
    assert torch.allclose(red * 255, torch.tensor([0.0, 20.0, 40.0, 70.0]), atol=1e-3)
    assert read_frames(stepped_20s, max_frames=30, max_seconds=8).timestamps == [float(t) for t in range(8)]
    assert read_frames(stepped_20s, max_frames=30, max_seconds=100).timestamps == [float(t) for t in range(20)]
    with pytest.raises(ValueError, match="max_seconds"):
        read_frames(stepped_20s, max_seconds=0)


def test_video_input_kinds_agree(tiny_tokenizer: CLIPTokenizer, stepped_20s: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=6, image_size=16)
    decoded = read_frames(stepped_20s, max_frames=6)
    inputs = [stepped_20s, str(stepped_20s), stepped_20s.read_bytes(), decoded, decoded.frames, decoded.frames.numpy()]
    out = processor(videos=inputs)
    assert out["pixel_values"].shape == (len(inputs), 6, 3, 16, 16)
    for i in range(1, len(inputs)):
        assert torch.equal(out["pixel_values"][i], out["pixel_values"][0])
    single = processor(videos=decoded.frames)  # one [n, 3, H, W] tensor is one video
    assert single["pixel_values"].shape[0] == 1
    batch = processor(videos=decoded.frames.unsqueeze(0).repeat(2, 1, 1, 1, 1))  # [B, n, 3, H, W]
    assert batch["pixel_values"].shape[0] == 2


def test_more_decoded_frames_than_max_are_linspaced(tiny_tokenizer: CLIPTokenizer) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=4, image_size=4)
    frames = torch.arange(10, dtype=torch.uint8).mul(20).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    pixels, mask = processor.load_video(frames)
    red = (pixels[:, 0, 0, 0] * CLIP_STD[0] + CLIP_MEAN[0]) * 255
    assert torch.allclose(red, torch.tensor([0.0, 60.0, 120.0, 180.0]), atol=1e-3)  # frames 0, 3, 6, 9
    assert mask.tolist() == [1, 1, 1, 1]


def test_text_and_videos_together_and_formats(tiny_tokenizer: CLIPTokenizer, flat_3s: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_words=6, max_frames=4, image_size=8)
    out = processor(text=["the cat", "the dog"], videos=[flat_3s, flat_3s])
    assert set(out) == {"input_ids", "attention_mask", "pixel_values", "video_mask"}
    assert out["input_ids"].shape == (2, 6) and out["pixel_values"].shape == (2, 4, 3, 8, 8)
    as_np = processor(text="the cat", videos=flat_3s, return_tensors="np")
    assert isinstance(as_np["pixel_values"], np.ndarray) and as_np["video_mask"].tolist() == [[1, 1, 1, 0]]
    as_list = processor(text="the cat", return_tensors=None)
    assert as_list["input_ids"] == [out["input_ids"][0].tolist()]
    assert processor.model_input_names == ["input_ids", "attention_mask", "pixel_values", "video_mask"]


def test_video_errors(tiny_tokenizer: CLIPTokenizer, tmp_path: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, max_frames=4, image_size=8)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        processor(videos=[tmp_path / "missing.mp4"])
    broken = write_garbage(tmp_path / "broken.mp4", repeats=10)
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        processor(videos=broken)
    with pytest.raises(ValueError, match=r"videos\[1\].*uint8"):
        processor(videos=[torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, 3, 8, 8)])
    with pytest.raises(ValueError, match=r"videos\[0\] has no frames"):
        processor(videos=[torch.zeros(0, 3, 8, 8, dtype=torch.uint8)])
    with pytest.raises(TypeError, match="videos"):
        processor(videos=3.5)
    with pytest.raises(ValueError, match="videos"):
        processor(videos=[])


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"max_words": 1}, "max_words"),
        ({"max_frames": 0}, "max_frames"),
        ({"image_size": 0}, "image_size"),
        ({"sample_fps": 0.0}, "sample_fps"),
        ({"sample_fps": float("inf")}, "sample_fps"),
        ({"video_backend": "opencv"}, "video_backend"),
        ({"max_seconds": -1.0}, "max_seconds"),
    ],
)
def test_bad_settings(tiny_tokenizer: CLIPTokenizer, kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        GLCCLProcessor(tiny_tokenizer, **kwargs)


def test_tokenizer_is_required(tiny_tokenizer: CLIPTokenizer) -> None:
    with pytest.raises(TypeError, match="tokenizer"):
        GLCCLProcessor("not a tokenizer")


# ------------------------------------------------------------------------------------------------ save / load

SETTINGS = {"max_words": 20, "max_frames": 7, "image_size": 64, "sample_fps": 0.5, "max_seconds": 32.0}


def check_same_processor(loaded: GLCCLProcessor, original: GLCCLProcessor) -> None:
    assert isinstance(loaded, GLCCLProcessor)
    for key in (*SETTINGS, "video_backend"):
        assert getattr(loaded, key) == getattr(original, key)
    text = ["the cat and the dog", "something else entirely, with punctuation!"]
    for key in ("input_ids", "attention_mask"):
        assert torch.equal(loaded(text=text)[key], original(text=text)[key])


def test_save_and_load_round_trip(tiny_tokenizer: CLIPTokenizer, tmp_path: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, **SETTINGS)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "GLCCLProcessor"
    assert {key: saved[key] for key in SETTINGS} == SETTINGS and saved["video_backend"] == "pyav"
    check_same_processor(GLCCLProcessor.from_pretrained(tmp_path), processor)


def test_auto_processor(tiny_tokenizer: CLIPTokenizer, tmp_path: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, **SETTINGS)
    only_processor = tmp_path / "processor_only"
    processor.save_pretrained(only_processor)
    check_same_processor(AutoProcessor.from_pretrained(only_processor), processor)
    # A model directory: config.json (model_type glccl) next to the processor files.
    with_config = tmp_path / "with_config"
    processor.save_pretrained(with_config)
    GLCCLConfig().save_pretrained(with_config)
    assert json.loads((with_config / "config.json").read_text())["model_type"] == "glccl"
    check_same_processor(AutoProcessor.from_pretrained(with_config), processor)


def test_package_exports_processor() -> None:
    assert "GLCCLProcessor" in glccl_hf.__all__
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    assert PROCESSOR_MAPPING[GLCCLConfig] is GLCCLProcessor


def test_fraction_fps_setting_round_trips(tiny_tokenizer: CLIPTokenizer, tmp_path: Path) -> None:
    processor = GLCCLProcessor(tiny_tokenizer, sample_fps=float(Fraction(1, 3)))
    processor.save_pretrained(tmp_path)
    assert GLCCLProcessor.from_pretrained(tmp_path).sample_fps == processor.sample_fps


def test_sample_frames_are_load_videos_frames_before_normalisation(tiny_tokenizer: CLIPTokenizer, tmp_path) -> None:
    # A non-square video of varied pixels, so that resize, rounding and centre crop all matter.
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 3, 48, 80), dtype=np.uint8)
    processor = GLCCLProcessor(tiny_tokenizer, max_words=8, max_frames=3, image_size=20)
    sampled = processor.sample_frames(frames)
    assert sampled.dtype == torch.uint8 and sampled.shape == (3, 3, 20, 20)
    pixel_values, video_mask = processor.load_video(frames)
    again, again_mask = processor.load_video(sampled)
    assert torch.equal(again, pixel_values) and torch.equal(again_mask, video_mask)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(sampled.float() / 255, pixel_values[:3] * std + mean, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ remote code


@pytest.fixture()
def checkpoint_with_processor(tiny_tokenizer: CLIPTokenizer, tmp_path: Path) -> tuple[Path, GLCCLProcessor]:
    """A model + processor folder as save_pretrained of both writes it (the Trainer's checkpoints, the demo's)."""
    processor = GLCCLProcessor(tiny_tokenizer, max_words=8, max_frames=4, image_size=16)
    return save_for_hub(tmp_path / "checkpoint", tiny_model(), processor), processor


def test_checkpoint_carries_the_processor_code(checkpoint_with_processor: tuple[Path, GLCCLProcessor]) -> None:
    checkpoint, _ = checkpoint_with_processor
    for name in sorted(PROCESSOR_CODE | SHARED_CODE):
        assert (checkpoint / name).is_file(), name
    saved = json.loads((checkpoint / "processor_config.json").read_text())
    assert saved["auto_map"] == {"AutoProcessor": "processing_glccl.GLCCLProcessor"}


def test_auto_processor_remote_code_without_glccl_hf(
    checkpoint_with_processor: tuple[Path, GLCCLProcessor], tmp_path: Path
) -> None:
    checkpoint, processor = checkpoint_with_processor
    video = write_flat_video(tmp_path / "clip.mkv", [COLOUR] * 30, size=(24, 20))
    text = ["the cat", "the dog the cat the dog the cat the dog"]  # the second is cut to max_words
    expected = processor(text=text, videos=[video, video])
    script = f"""
        import torch
        from transformers import AutoProcessor
        # Without av (PyAV): a clear ImportError saying what to install.
        try:
            AutoProcessor.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
            print("no ImportError without av")
        except ImportError as exc:
            print("ImportError:", exc)
        HIDDEN.discard("av")  # now installed; glccl_hf still is not
        processor = AutoProcessor.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
        assert type(processor).__name__ == "GLCCLProcessor", type(processor)
        assert type(processor).__module__.startswith("transformers_modules"), type(processor).__module__
        out = processor(text={text!r}, videos=[{str(video)!r}, {str(video)!r}])
        torch.save(dict(out), {str(tmp_path / "out.pt")!r})
        """
    result = run_without_packages(script, tmp_path, hidden=("glccl_hf", "av"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ImportError:" in result.stdout and "pip install av" in result.stdout, result.stdout
    out = torch.load(tmp_path / "out.pt")
    assert set(out) == {"input_ids", "attention_mask", "pixel_values", "video_mask"}
    assert out["input_ids"].shape == (2, 8) and out["input_ids"][1, -1] == processor.tokenizer.eos_token_id
    for key, value in expected.items():
        assert torch.equal(out[key], value), key
