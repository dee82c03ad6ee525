"""Tests of glccl_hf.hub: Hub uploads of a model, its processor and its card, and of a Trainer run; all offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from card_fixtures import EVAL_OUTPUT, REPO_ID, CardTrainer, find, glccl_trainer, make_trainer, model_index_results
from huggingface_hub import HfApi, ModelCard, metadata_load
from modeling_fixtures import PROCESSOR_CODE, SHARED_CODE
from transformers import AutoModel, AutoProcessor, Trainer
from transformers.dynamic_module_utils import get_class_from_dynamic_module

import glccl_hf  # noqa: F401  (registers GLCCL with the Auto classes)
from glccl_hf import GLCCLProcessor
from glccl_hf.hub import push_to_hub, push_trainer_to_hub

MODEL_FILES = {
    "model.safetensors",
    "config.json",
    "configuration_glccl.py",
    "modeling_glccl.py",
    "glim.py",
    "losses.py",
    "distributed.py",
    "outputs_glccl.py",
}
PROCESSOR_FILES = {"processor_config.json", "tokenizer.json", "tokenizer_config.json", *PROCESSOR_CODE}


# -------------------------------------------------------------------------- transformers' own push_to_hub


@pytest.fixture
def transformers_hub(full_card: ModelCard):
    """transformers' Hub entry points mocked; records each commit's files and README text."""
    commits: list[dict[str, Any]] = []

    def create_commit(repo_id: str, operations: list[Any], **kwargs: Any) -> str:
        files = {op.path_in_repo: op.path_or_fileobj for op in operations}
        readme = Path(files["README.md"]).read_text(encoding="utf-8") if "README.md" in files else None
        commits.append({"repo_id": repo_id, "files": set(files), "readme": readme, **kwargs})
        return "commit-url"

    api = mock.MagicMock()
    api.create_repo.return_value.repo_id = REPO_ID
    api.create_commit.side_effect = create_commit
    with (
        mock.patch("transformers.utils.hub.hf_api", return_value=api),
        mock.patch("transformers.utils.hub.create_and_tag_model_card", return_value=full_card) as card_factory,
    ):
        yield api, commits, card_factory


def test_model_push_to_hub_uploads_weights_code_and_card(model, transformers_hub, full_card):
    api, commits, card_factory = transformers_hub
    assert model.push_to_hub(REPO_ID) == "commit-url"
    api.create_repo.assert_called_once()
    card_factory.assert_called_once()
    (commit,) = commits
    assert commit["files"] == MODEL_FILES | SHARED_CODE | {"README.md"}
    assert commit["readme"] == str(full_card)


def test_processor_push_to_hub_uploads_processor_files(processor, transformers_hub):
    api, commits, _ = transformers_hub
    processor.push_to_hub(REPO_ID)
    (commit,) = commits
    assert PROCESSOR_FILES | SHARED_CODE | {"README.md"} <= commit["files"]
    assert not commit["files"] & MODEL_FILES


# ------------------------------------------------------------------------------------ one-commit push_to_hub


@pytest.fixture
def hf_api_calls(tmp_path: Path):
    """HfApi mocked: create_repo answers, upload_folder copies the folder it is given; any create_commit fails."""
    uploads: list[dict[str, Any]] = []

    def upload_folder(self: HfApi, *, folder_path: str, **kwargs: Any) -> str:
        copy = tmp_path / f"upload{len(uploads)}"
        shutil.copytree(folder_path, copy)
        uploads.append({"folder": copy, "files": {p.name for p in copy.iterdir()}, **kwargs})
        return "commit-info"

    repo = mock.MagicMock(repo_id=REPO_ID)
    with (
        mock.patch.object(HfApi, "create_repo", autospec=True, return_value=repo) as create_repo,
        mock.patch.object(HfApi, "create_branch", autospec=True) as create_branch,
        mock.patch.object(HfApi, "upload_folder", autospec=True, side_effect=upload_folder),
        mock.patch.object(HfApi, "create_commit", autospec=True, side_effect=AssertionError("unexpected commit")),
    ):
        yield create_repo, create_branch, uploads


def test_push_to_hub_one_commit_with_everything(model, processor, full_card, hf_api_calls):
    create_repo, create_branch, uploads = hf_api_calls
    result = push_to_hub(REPO_ID, model, processor, full_card, private=True, token="hf_x", commit_message="msg")
    assert result == "commit-info"
    create_repo.assert_called_once_with(mock.ANY, REPO_ID, private=True, token="hf_x", exist_ok=True)
    create_branch.assert_not_called()
    (upload,) = uploads  # one commit
    assert upload["files"] == MODEL_FILES | PROCESSOR_FILES | SHARED_CODE | {"README.md"}
    assert upload["repo_id"] == REPO_ID and upload["commit_message"] == "msg" and upload["token"] == "hf_x"
    assert upload["revision"] is None and upload["create_pr"] is False
    folder = upload["folder"]
    assert (folder / "README.md").read_text(encoding="utf-8") == str(full_card)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_glccl.GLCCLConfig",
        "AutoModel": "modeling_glccl.GLCCLModel",
    }
    # What was uploaded loads back: the model through the uploaded code (the class the auto_map names, imported
    # from the folder, as trust_remote_code does where glccl_hf is absent) and through AutoModel, the processor
    # through glccl_hf.
    remote_class = get_class_from_dynamic_module(config["auto_map"]["AutoModel"], str(folder))
    assert remote_class.__module__.startswith("transformers_modules")
    for loaded in (remote_class.from_pretrained(folder), AutoModel.from_pretrained(folder)):
        torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    restored = AutoProcessor.from_pretrained(folder)
    assert isinstance(restored, GLCCLProcessor)
    assert (restored.max_words, restored.max_frames, restored.image_size) == (8, 4, 16)


def test_push_to_hub_default_card_and_branch(model, processor, hf_api_calls):
    _, create_branch, uploads = hf_api_calls
    push_to_hub(REPO_ID, model, processor, revision="dev", create_pr=True)
    create_branch.assert_called_once_with(mock.ANY, REPO_ID, branch="dev", token=None, exist_ok=True)
    (upload,) = uploads
    assert upload["revision"] == "dev" and upload["create_pr"] is True
    readme = (upload["folder"] / "README.md").read_text(encoding="utf-8")
    assert "# glccl-tiny\n" in readme
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True)' in readme
    assert "model-index" not in metadata_load(upload["folder"] / "README.md")


def test_push_to_hub_without_processor(model, hf_api_calls):
    _, _, uploads = hf_api_calls
    push_to_hub(REPO_ID, model, None)
    assert uploads[0]["files"] == MODEL_FILES | SHARED_CODE | {"README.md"}


def test_push_to_hub_rejects_bad_inputs_before_creating_the_repo(model, processor, hf_api_calls):
    create_repo, _, uploads = hf_api_calls
    with pytest.raises(TypeError, match="model_or_config must be a GLCCLModel"):
        push_to_hub(REPO_ID, torch.nn.Linear(2, 2), processor)
    with pytest.raises(TypeError, match="card must be a huggingface_hub.ModelCard"):
        push_to_hub(REPO_ID, model, processor, card="# readme")
    with pytest.raises(ValueError, match="repo_id must be a non-empty string"):
        push_to_hub("", model, processor)
    create_repo.assert_not_called()
    assert not uploads


def test_push_to_hub_refuses_a_checkpoint_without_its_code(model, processor, hf_api_calls):
    _, _, uploads = hf_api_calls
    with (
        mock.patch.object(type(model), "_auto_class", None),
        pytest.raises(ValueError, match="cannot load with trust_remote_code"),
    ):
        push_to_hub(REPO_ID, model, processor)
    with (
        mock.patch.object(type(processor), "_auto_class", None),
        pytest.raises(ValueError, match="cannot load with trust_remote_code: processor_config.json"),
    ):
        push_to_hub(REPO_ID, model, processor)
    assert not uploads


# ------------------------------------------------------------------------------------------------- Trainer


@pytest.fixture
def trainer_hub():
    """transformers.trainer's Hub API mocked; upload_folder records the uploaded files (after ignore_patterns)."""
    uploads: list[dict[str, Any]] = []

    def upload_folder(*, folder_path: str, ignore_patterns: list[str], **kwargs: Any) -> str:
        folder = Path(folder_path)
        files = {
            p.name for p in folder.iterdir() if not p.name.startswith("_") and not p.name.startswith("checkpoint-")
        }
        readme = (folder / "README.md").read_text(encoding="utf-8")
        uploads.append({"files": files, "readme": readme, "ignore_patterns": ignore_patterns, **kwargs})
        return "commit-info"

    api = mock.MagicMock()
    api.create_repo.return_value.repo_id = REPO_ID
    api.upload_folder.side_effect = upload_folder
    with mock.patch("transformers.trainer.hf_api", return_value=api):
        yield api, uploads


def check_trainer_upload(upload: dict[str, Any]) -> None:
    assert MODEL_FILES | PROCESSOR_FILES | {"README.md"} <= upload["files"]
    readme = upload["readme"]
    assert "# glccl-tiny\n" in readme and "## How to use" in readme
    assert "proofread" not in readme and "trained from scratch" not in readme  # Trainer's generic card
    results = model_index_results(readme)
    # The latest evaluation in log_history, eval_ prefix stripped.
    assert find(results, task="text-to-video-retrieval", dataset="msrvtt", split="test", metric="recall@1", value=44.5)
    assert find(results, task="video-to-text-retrieval", dataset="msrvtt", metric="mean_rank", value=11.7)
    assert len(results) == 10
    assert "| Batch size | 4 |" in readme and "| Learning rate | 0.0001 |" in readme


def test_push_trainer_to_hub_uploads_our_card(model, processor, tmp_path, trainer_hub):
    api, uploads = trainer_hub
    trainer = make_trainer(Trainer, model, processor, tmp_path / "out")
    result = push_trainer_to_hub(trainer, eval_dataset="msrvtt", base_model="openai/clip-vit-base-patch32")
    assert result == "commit-info"
    api.create_repo.assert_called_once()
    (upload,) = uploads
    check_trainer_upload(upload)
    assert upload["repo_id"] == REPO_ID and upload["commit_message"] == "End of training"
    assert "openai/clip-vit-base-patch32" in upload["readme"]
    assert "create_model_card" not in vars(trainer)  # the class's method is back


def test_glccl_trainer_override_writes_our_card(model, processor, tmp_path, trainer_hub, full_card):
    _, uploads = trainer_hub
    trainer = make_trainer(CardTrainer, model, processor, tmp_path / "out")
    trainer.push_to_hub(eval_dataset="msrvtt", license="mit", finetuned_from="openai/clip-vit-base-patch32")
    check_trainer_upload(uploads[0])
    metadata = ModelCard(uploads[0]["readme"]).data
    assert metadata.license == "mit" and metadata.base_model == "openai/clip-vit-base-patch32"
    # A ready card passes through unchanged.
    trainer.push_to_hub(card=full_card)
    assert uploads[1]["readme"] == str(full_card)


def test_glccl_trainer_push_to_hub(model, processor, tmp_path, trainer_hub):
    """The real GLCCLTrainer (glccl_hf.training) writes this card through its create_model_card override."""
    from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments

    _, uploads = trainer_hub
    args = GLCCLTrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to=[],
        use_cpu=True,
        hub_model_id=REPO_ID,
        per_device_train_batch_size=4,
    )
    trainer = GLCCLTrainer(model=model, args=args, processing_class=processor)
    trainer.state.log_history.append({**EVAL_OUTPUT, "step": 10})
    trainer.push_to_hub(eval_dataset="msrvtt", train_dataset="msrvtt", train_split="train")
    check_trainer_upload(uploads[0])
    assert "| CLIP learning rate | 1e-07 (learning rate x coef_lr = 0.001) |" in uploads[0]["readme"]
    assert "| Schedule | cosine, warmup 10% of the steps |" in uploads[0]["readme"]


def test_push_trainer_to_hub_leaves_a_glccl_trainer_alone(model, processor, tmp_path, trainer_hub):
    _, uploads = trainer_hub
    trainer = glccl_trainer(model, processor, tmp_path / "out")
    trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, EVAL_OUTPUT)
    cls = type(trainer)
    with mock.patch.object(cls, "create_model_card", autospec=True, side_effect=cls.create_model_card) as method:
        push_trainer_to_hub(trainer, eval_dataset="msrvtt")
    method.assert_called_once()  # the class's own card writer, not one set on the instance
    assert "create_model_card" not in vars(trainer)
    check_trainer_upload(uploads[0])


def test_card_names_stay_importable_from_hub():
    """The card names README documents under glccl_hf.hub are the ones of the modules that now define them."""
    import glccl_hf.hub as hub
    import glccl_hf.metrics as metrics
    import glccl_hf.model_card as model_card
    import glccl_hf.trainer_card as trainer_card

    for name in ("RetrievalEvaluation", "build_model_card", "default_template_path", "save_model_card"):
        assert getattr(hub, name) is getattr(model_card, name)
    for name in ("ModelCardCallback", "trainer_model_card", "write_trainer_model_card"):
        assert getattr(hub, name) is getattr(trainer_card, name)
    assert hub.parse_retrieval_metrics is metrics.parse_retrieval_metrics
