"""Test-wide settings: no network, and a private Hugging Face cache per session."""

import os
import tempfile
from pathlib import Path

# Set before transformers / huggingface_hub are imported anywhere: they read these at import time.
_HF_HOME = tempfile.mkdtemp(prefix="glccl-hf-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_MODULES_CACHE"] = os.path.join(_HF_HOME, "modules")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # the search app's tests: no usage reports from Gradio

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data files beside the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    # Markers of transformers' common tests (test_transformers_common.py), which its own conftest registers.
    markers = ("slow", "accelerate_tests", "torch_compile_test", "flash_attn_test", "flash_attn_3_test")
    markers += ("flash_attn_4_test",)
    for marker in markers:
        config.addinivalue_line("markers", f"{marker}: transformers' own test marker")
