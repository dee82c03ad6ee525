"""transformers' own common model tests, taken from the sdist of the installed transformers version.

The sdist on the package index ships `tests/test_modeling_common.py` (`ModelTesterMixin`) and
`tests/test_configuration_common.py` (`ConfigTester`), but not three helper modules they import. This module downloads
the sdist once (`pip download`, cached in the git-ignored `.transformers-tests/<version>/`), loads the two files as the
package `transformers_tests`, and supplies our own minimal versions of the missing helpers (written here, not copied):

- `exporters.test_export.ExportTesterMixin`: one `torch.export` round trip of the model on the tester's inputs.
- `generation.test_utils.GenerationTesterMixin`: an empty marker class (the suite only checks `issubclass` against it;
  GLCCL does not generate).
- `utils.test_configuration_utils.config_common_kwargs`: read only by `ConfigTester` for configs without sub-configs.

Run as a script (`python tests/transformers_suite.py`) it only fills the cache, so `make install` can do it ahead.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import torch
import transformers

CACHE_ROOT = Path(__file__).resolve().parents[1] / ".transformers-tests"
PACKAGE = "transformers_tests"
_REQUIRED = ("test_modeling_common.py", "test_configuration_common.py")


def tests_folder(version: str = transformers.__version__) -> Path:
    return CACHE_ROOT / version / "tests"


def download_tests(version: str = transformers.__version__) -> Path:
    """The sdist's `tests/` folder for `version`, downloaded once with pip; raises RuntimeError naming the cause."""
    target = tests_folder(version)
    if all((target / name).is_file() for name in _REQUIRED + ("__init__.py",)):
        return target
    with tempfile.TemporaryDirectory() as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        command += ["--dest", download_dir, f"transformers=={version}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        archives = list(Path(download_dir).glob("transformers-*.tar.gz"))
        if result.returncode or not archives:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no sdist downloaded"]
            raise RuntimeError(f"pip download of the transformers {version} sdist failed: {tail[0]}")
        _extract_tests(archives[0], target)
    missing = [name for name in _REQUIRED if not (target / name).is_file()]
    if missing:
        raise RuntimeError(f"the transformers {version} sdist has no tests/{', tests/'.join(missing)}")
    # The repository's tests/ is a package (test_configuration_common imports its folder's __init__.py); the sdist
    # leaves the empty marker out.
    (target / "__init__.py").touch()
    return target


def _extract_tests(archive: Path, target: Path) -> None:
    # Extract into a sibling folder and rename, so an interrupted run never leaves a half-filled cache.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    try:
        with tarfile.open(archive) as sdist:
            members = [member for member in sdist.getmembers() if member.name.split("/")[1:2] == ["tests"]]
            sdist.extractall(staging, members=members, filter="data")
        (staging / members[0].name.split("/")[0] / "tests").rename(target)
    finally:
        shutil.rmtree(staging)


class ExportTesterMixin:
    """`torch.export` of every model class on the tester's common inputs; the exported program must reproduce
    eager outputs."""

    test_torch_exportable = True

    def test_torch_export(self) -> None:
        if not self.test_torch_exportable:
            self.skipTest(reason="test_torch_exportable is False")
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config).eval()
            inputs = self._prepare_for_class(inputs_dict, model_class)
            with torch.no_grad():
                program = torch.export.export(model, args=(), kwargs=inputs, strict=False)
                eager = model(**inputs).to_tuple()
                exported = program.module()(**inputs)
            exported = exported.to_tuple() if hasattr(exported, "to_tuple") else exported
            eager_tensors = [value for value in eager if isinstance(value, torch.Tensor)]
            exported_tensors = [value for value in exported if isinstance(value, torch.Tensor)]
            self.assertEqual(len(eager_tensors), len(exported_tensors))
            for eager_value, exported_value in zip(eager_tensors, exported_tensors, strict=True):
                torch.testing.assert_close(exported_value, eager_value, rtol=1e-4, atol=1e-5)


class GenerationTesterMixin:
    """Marker only: the suite checks `issubclass(test, GenerationTesterMixin)` before running `generate` tests."""


def _module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so its submodules resolve through sys.modules
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


def load_common_tests() -> tuple[types.ModuleType, types.ModuleType]:
    """`(test_modeling_common, test_configuration_common)` of the installed transformers version."""
    folder = download_tests()
    if PACKAGE not in sys.modules:
        package = _module(PACKAGE)
        package.__path__ = [str(folder)]
        stand_ins = {
            "exporters.test_export": {"ExportTesterMixin": ExportTesterMixin},
            "generation.test_utils": {"GenerationTesterMixin": GenerationTesterMixin},
            "utils.test_configuration_utils": {"config_common_kwargs": {}},
        }
        for dotted, attributes in stand_ins.items():
            parent, child = dotted.split(".")
            if (folder / parent / f"{child}.py").is_file():
                continue  # a later sdist ships the real helper: use it
            if f"{PACKAGE}.{parent}" not in sys.modules:
                _module(f"{PACKAGE}.{parent}")
            _module(f"{PACKAGE}.{dotted}", **attributes)
    modeling = importlib.import_module(f"{PACKAGE}.test_modeling_common")
    configuration = importlib.import_module(f"{PACKAGE}.test_configuration_common")
    return modeling, configuration


if __name__ == "__main__":
    print(download_tests())
