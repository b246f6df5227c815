"""Executes the five notebooks in smoke mode (what CI runs): a failing cell fails the test.

Each notebook is executed with nbclient in a kernel of *this* interpreter (a kernelspec written to a
temporary folder, so no installed kernelspec is needed), on the real datasets (`SIGVER_TEST_DATA`, else
`../shared/datasets`; skipped with a reason when absent). Everything the notebooks write goes to a
temporary folder: the executed copies, what 03 trains (`SIGVER_NOTEBOOK_WORKDIR`, which 04 and 05 read),
the manifests of 02 (`SIGVER_NOTEBOOK_PAIRS_OUT`). The committed notebooks and `image_pairs/` are checked
to be unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (requirements_model_notebooks.txt)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (requirements_model_notebooks.txt)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (requirements_model_notebooks.txt)")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = [
    "01-preprocessing.ipynb",
    "02-pairs.ipynb",
    "03-training.ipynb",
    "04-evaluation.ipynb",
    "05-cross-dataset-validation.ipynb",
]
KERNEL_NAME = "sigver-notebook-tests"
CELL_TIMEOUT_S = int(os.environ.get("SIGVER_NOTEBOOK_CELL_TIMEOUT", "600"))


def _digests(paths) -> dict[str, str]:
    return {str(p.relative_to(REPO_ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths) if p.is_file()}


def _protected() -> dict[str, str]:
    return _digests([*NOTEBOOKS_DIR.glob("*.ipynb"), *(REPO_ROOT / "image_pairs").glob("*/*.csv")])


@pytest.fixture(scope="module")
def notebook_data(shared_datasets: Path) -> Path:
    missing = [name for name in ("CEDAR", "GPDS") if not (shared_datasets / name).is_dir()]
    if missing:
        pytest.skip(f"the notebooks need {' and '.join(missing)} in {shared_datasets} (set SIGVER_TEST_DATA)")
    return shared_datasets


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory, notebook_data: Path):
    """The temporary folders and kernel environment shared by the five runs (04 reads what 03 trained)."""
    base = tmp_path_factory.mktemp("notebooks")
    kernels = base / "kernels"
    (kernels / KERNEL_NAME).mkdir(parents=True)
    (kernels / KERNEL_NAME / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (sigver tests)",
        "language": "python",
    }))
    env = {k: v for k, v in os.environ.items() if k not in {"SIGVER_MODEL_PATH", "MPLBACKEND"}}
    env.update({
        "SIGVER_NOTEBOOK_SMOKE": "1",
        "SIGVER_DATA_DIR": str(notebook_data),
        "SIGVER_NOTEBOOK_WORKDIR": str(base / "work"),
        "SIGVER_NOTEBOOK_PAIRS_OUT": str(base / "image_pairs"),
        "OMP_NUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    before = _protected()
    yield {"base": base, "kernels": kernels, "env": env}
    assert _protected() == before, "executing the notebooks changed committed notebooks or image_pairs/ CSVs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_smoke_mode(name: str, notebook_run) -> None:
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    assert any(c.cell_type == "code" for c in nb.cells)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(notebook_run["kernels"])]))
    client = nbclient.NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S, startup_timeout=120, allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},  # the kernel's working directory: inside the repository
    )
    out = notebook_run["base"] / "executed" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        client.execute(env=notebook_run["env"])
    finally:
        nbformat.write(nb, out)  # the executed copy (with the failing cell's traceback) for inspection
        print(f"{name}: {time.perf_counter() - started:.1f} s, executed copy {out}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    if name == "02-pairs.ipynb":  # 02 wrote its manifests into the temporary folder, not image_pairs/
        assert sorted(p.name for p in (notebook_run["base"] / "image_pairs" / "CEDAR").glob("*.csv")) == [
            "pairs_test.csv", "pairs_train.csv", "pairs_validation.csv", "splits.csv"]
    if name == "03-training.ipynb":
        assert (notebook_run["base"] / "work" / "smoke" / "siamese_resnet18.safetensors").is_file()
    smoke_model = notebook_run["base"] / "work" / "smoke" / "siamese_resnet18.safetensors"
    if name == "04-evaluation.ipynb" and smoke_model.is_file():  # 04 evaluated the model 03 just trained, and said so
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
        assert "NOTE — smoke mode" in text and str(smoke_model) in text
