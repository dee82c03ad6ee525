"""Hub uploads of GLCCL checkpoints: weights, model code, processor files and the model card in one commit.

- :func:`save_for_hub` saves what a repository holds into a folder (checking that remote-code loading will work).
- :func:`push_to_hub` uploads a model, its processor and its card in one commit.
- :func:`push_trainer_to_hub` pushes a Trainer run with the GLCCL card instead of Trainer's generic one.

The card itself is built by :mod:`glccl_hf.model_card` (a Trainer run's by :mod:`glccl_hf.trainer_card`); its names
are importable from here too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, HfApi
from huggingface_hub.repocard import RepoCard
from transformers import Trainer
from transformers.utils import logging

from .metrics import parse_retrieval_metrics
from .model_card import (
    DEFAULT_TAGS,
    PIPELINE_TAG,
    RetrievalEvaluation,
    build_model_card,
    default_template_path,
    glccl_config_of,
    save_model_card,
)
from .trainer_card import ModelCardCallback, trainer_model_card, write_trainer_model_card

logger = logging.get_logger(__name__)

__all__ = [
    "DEFAULT_TAGS",
    "PIPELINE_TAG",
    "ModelCardCallback",
    "RetrievalEvaluation",
    "build_model_card",
    "default_template_path",
    "parse_retrieval_metrics",
    "push_to_hub",
    "push_trainer_to_hub",
    "save_for_hub",
    "save_model_card",
    "trainer_model_card",
    "write_trainer_model_card",
]

_MODEL_REMOTE_CODE = ("config.json", ("AutoConfig", "AutoModel"))
_PROCESSOR_REMOTE_CODE = ("processor_config.json", ("AutoProcessor",))


def save_for_hub(directory: str | os.PathLike, model: Any, processor: Any = None, card: RepoCard | None = None) -> Path:
    """Save what a GLCCL repository holds into `directory`: weights and config with their remote code, the processor
    (tokenizer files and ``processor_config.json``) and ``README.md`` (`card`, or a default one when None).

    Raises:
        ValueError: the saved config (or processor config) has no ``auto_map`` or a file it names is missing, so
            ``trust_remote_code`` loading would fail.
    """
    glccl_config_of(model)
    if processor is not None and not callable(getattr(processor, "save_pretrained", None)):
        raise TypeError(f"processor must have save_pretrained (a GLCCLProcessor), got {type(processor).__name__}")
    directory = Path(directory)
    model.save_pretrained(directory)
    _check_remote_code(directory, *_MODEL_REMOTE_CODE)
    if processor is not None:
        processor.save_pretrained(directory)
        _check_remote_code(directory, *_PROCESSOR_REMOTE_CODE)
    save_model_card(card if card is not None else build_model_card(model), directory)
    return directory


def _check_remote_code(directory: Path, config_name: str, auto_classes: tuple[str, ...]) -> None:
    config = json.loads((directory / config_name).read_text(encoding="utf-8"))
    auto_map = config.get("auto_map") or {}
    missing_classes = [name for name in auto_classes if name not in auto_map]
    missing_files = sorted(
        {
            reference.split(".")[0] + ".py"
            for reference in auto_map.values()
            if isinstance(reference, str) and "--" not in reference
        }
        - {path.name for path in directory.glob("*.py")}
    )
    if missing_classes or missing_files:
        raise ValueError(
            f"the saved checkpoint cannot load with trust_remote_code: {config_name}'s auto_map lacks "
            f"{missing_classes}, missing files {missing_files}; register the classes first "
            "(GLCCLConfig.register_for_auto_class(), GLCCLModel.register_for_auto_class('AutoModel'), "
            "GLCCLProcessor.register_for_auto_class('AutoProcessor'))"
        )


def push_to_hub(
    repo_id: str,
    model: Any,
    processor: Any,
    card: RepoCard | None = None,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = "Upload GLCCL model, processor and model card",
    commit_description: str | None = None,
) -> CommitInfo:
    """Upload a GLCCL model, its processor and its card to the Hub in one commit.

    Everything is saved into a temporary folder (:func:`save_for_hub`) and sent with one
    `HfApi.upload_folder`, so the repository never holds weights without their code, processor or card. (Calling
    ``model.push_to_hub`` and ``processor.push_to_hub`` instead makes two commits, and each writes transformers'
    generic README unless the repository already has one.)

    Args:
        repo_id: ``"user/name"`` (created if missing).
        model: the `GLCCLModel`.
        processor: its `GLCCLProcessor`, or None to upload no processor files.
        card: the model card; None builds a default one with :func:`build_model_card` (no metrics).
        private: visibility when the repository is created.
        token: Hub token; None uses the saved login.
        revision: branch to commit to (created if missing).
        create_pr: open a pull request instead of committing to the branch.
        commit_message, commit_description: the commit's text.

    Returns:
        the `CommitInfo` of the upload.
    """
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"repo_id must be a non-empty string, got {repo_id!r}")
    repo_id = repo_id.strip()
    glccl_config_of(model)
    if card is not None and not isinstance(card, RepoCard):
        raise TypeError(f"card must be a huggingface_hub.ModelCard, got {type(card).__name__}")
    api = HfApi(token=token, library_name="glccl-hf")
    repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr/"):
        api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
    if card is None:
        card = build_model_card(model, repo_id=repo_id)
    with tempfile.TemporaryDirectory(prefix="glccl-push-") as folder:
        save_for_hub(folder, model, processor, card)
        logger.info("Uploading %s to %s", sorted(os.listdir(folder)), repo_id)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message,
            commit_description=commit_description,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )


def push_trainer_to_hub(
    trainer: Any,
    card: RepoCard | None = None,
    *,
    commit_message: str | None = "End of training",
    blocking: bool = True,
    token: str | None = None,
    revision: str | None = None,
    private: bool | None = None,
    **card_kwargs: Any,
) -> Any:
    """``trainer.push_to_hub()`` with the GLCCL card (`card`, or one built from `card_kwargs` by
    :func:`write_trainer_model_card`) instead of Trainer's generic one.

    Trainer saves the model (weights, config, remote code), the processor (``processing_class``) and the training
    arguments into ``output_dir`` and uploads the folder in one commit. A GLCCLTrainer writes the GLCCL card itself
    (its ``create_model_card``, like any Trainer class overriding it); a plain Trainer gets
    :func:`write_trainer_model_card` as its card writer for this one call.
    """
    writes_card = type(trainer).create_model_card is not Trainer.create_model_card
    if not writes_card:
        trainer.create_model_card = lambda **kwargs: write_trainer_model_card(trainer, **kwargs)
    try:
        return trainer.push_to_hub(commit_message, blocking, token, revision, private, card=card, **card_kwargs)
    finally:
        if not writes_card:
            del trainer.create_model_card  # the class's method is back
