"""The set-up shared by the notebooks in `notebooks/`: repository root, data folder, smoke mode, models.

Environment variables (documented in notebooks/README.md):

- `SIGVER_DATA_DIR`: folder holding the dataset folders: `CEDAR/` and `GPDS/` (required), and the other four of
  the benchmark (`BHSig260-Bengali/`, `BHSig260-Hindi/`, `SigComp2011-Dutch/`, `CNSig/`; a notebook skips one that
  is absent, with a note) (default `organized_data/`; a relative path is taken from the repository root). The same
  variable tells the API where the datasets are.
- `SIGVER_NOTEBOOK_SMOKE`: `1`/`true`/`yes`/`on` for a fast run on a few writers, images and steps
  (what the test suite and CI execute); numbers from a smoke run mean nothing.
- `SIGVER_NOTEBOOK_WORKDIR`: where the notebooks write what they train and draw (default
  `runs/notebook/`, git-ignored). 03 writes its model there, 04 and 05 look for it there.
- `SIGVER_NOTEBOOK_PAIRS_OUT`: where 02 writes its CSVs (default: `image_pairs/` in a full run, a
  temporary folder in smoke mode, so that a smoke run never rewrites the committed manifests).
- `SIGVER_MODEL_PATH`: a model for 04 to evaluate instead of the shipped one (used as given, in every mode).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

DATA_ENV = "SIGVER_DATA_DIR"
SMOKE_ENV = "SIGVER_NOTEBOOK_SMOKE"
WORKDIR_ENV = "SIGVER_NOTEBOOK_WORKDIR"
PAIRS_OUT_ENV = "SIGVER_NOTEBOOK_PAIRS_OUT"
MODEL_ENV = "SIGVER_MODEL_PATH"
DEFAULT_DATA_DIR = "organized_data"
DEFAULT_WORKDIR = "runs/notebook"
BENCHMARK_DATASETS = ("CEDAR", "GPDS", "BHSig260-Bengali", "BHSig260-Hindi", "SigComp2011-Dutch", "CNSig")
REQUIRED_DATASETS = ("CEDAR", "GPDS")  # every notebook reads these two; the other four are skipped when absent
TRUE = {"1", "true", "yes", "on"}


def find_repo_root(start: str | Path | None = None) -> Path:
    """The first folder at or above `start` (default: the working directory) holding `backend/sigml/`."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "backend" / "sigml").is_dir():
            return folder
    raise RuntimeError(f"cannot find the repository root (a folder holding backend/sigml/) above {here}: start Jupyter inside the repository")


@dataclass(frozen=True)
class NotebookEnv:
    root: Path
    data_dir: Path
    smoke: bool
    workdir: Path
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, start: str | Path | None = None) -> "NotebookEnv":
        environ = os.environ if environ is None else environ
        root = find_repo_root(start)
        return cls(
            root=root,
            data_dir=_resolve(root, environ.get(DATA_ENV) or DEFAULT_DATA_DIR),
            smoke=environ.get(SMOKE_ENV, "").strip().lower() in TRUE,
            workdir=_resolve(root, environ.get(WORKDIR_ENV) or DEFAULT_WORKDIR),
            environ=dict(environ),
        )

    def dataset_dir(self, name: str) -> Path:
        """`<data dir>/<name>`, or a FileNotFoundError that says which variable to set."""
        path = self.data_dir / name
        if not path.is_dir():
            raise FileNotFoundError(
                f"dataset {name} not found at {path}: set {DATA_ENV} to the folder holding CEDAR/ and GPDS/ "
                "(in the development layout: ../shared/datasets)"
            )
        return path

    def available_datasets(self, names: Sequence[str] = BENCHMARK_DATASETS, *,
                           required: Sequence[str] = REQUIRED_DATASETS) -> tuple[dict[str, Path], list[str]]:
        """The folders of `names` present in the data dir (name -> folder, in the order given) and the names that
        are absent, for the notebook to skip with a note; an absent `required` one raises `dataset_dir`'s error."""
        for name in required:
            self.dataset_dir(name)
        present = {name: self.data_dir / name for name in names if (self.data_dir / name).is_dir()}
        return present, [name for name in names if name not in present]

    def path_from_env(self, name: str) -> Path | None:
        """The path in environment variable `name` (relative to the repository root), or None when unset."""
        value = self.environ.get(name)
        return _resolve(self.root, value) if value else None

    def pairs_out(self, scratch: str | Path) -> Path:
        """Where 02 writes its manifests: `SIGVER_NOTEBOOK_PAIRS_OUT`, else `scratch` in smoke mode, else `image_pairs/`."""
        explicit = self.path_from_env(PAIRS_OUT_ENV)
        if explicit:
            return explicit
        return Path(scratch) if self.smoke else self.root / "image_pairs"

    def describe(self) -> str:
        return (f"repository: {self.root}\ndata:       {self.data_dir}  ({DATA_ENV})\n"
                f"work dir:   {self.workdir}  ({WORKDIR_ENV})\nsmoke mode: {self.smoke}  ({SMOKE_ENV})")


def _resolve(root: Path, value: str | Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def setup(start: str | Path | None = None) -> NotebookEnv:
    """Read the environment, print where everything is; in smoke mode use one torch thread (a smoke run is small, and
    runs beside other tests)."""
    env = NotebookEnv.from_environ(start=start)
    if env.smoke:
        import torch

        torch.set_num_threads(1)
    print(env.describe())
    return env


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    note: str | None  # why this is not the preferred model; None when it is


def choose_model(
    preferred: str | Path,
    *,
    smoke: bool,
    fallbacks: Sequence[str | Path] = (),
    scratch: str | Path | None = None,
    explicit: str | Path | None = None,
) -> ModelChoice:
    """The model a notebook evaluates.

    `explicit` (e.g. from SIGVER_MODEL_PATH) wins in every mode and must exist. Otherwise `preferred`
    (the shipped model) unless in smoke mode or absent; then the first existing `fallbacks`, else an
    untrained test model (`sigml.testing.make_test_model`) written into `scratch`. The note says which
    and why, for the notebook to print.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{MODEL_ENV} names {path}, which does not exist")
        return ModelChoice(path, None)
    preferred = Path(preferred)
    if not smoke and preferred.is_file():
        return ModelChoice(preferred, None)
    reason = "smoke mode" if smoke else f"{preferred} not found"
    for candidate in map(Path, fallbacks):
        if candidate.is_file():
            return ModelChoice(candidate, f"{reason}: using {candidate} instead of {preferred.name} "
                                          "(a small model: its numbers say nothing about the shipped one)")
    from .testing import make_test_model

    scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="sigver-model-"))
    path = make_test_model(scratch)
    return ModelChoice(path, f"{reason}: no trained model found, using an UNTRAINED test model {path} "
                             "(the code path runs, the numbers mean nothing)")


def subset_split_file(writers: Sequence[str], out: str | Path, dataset: str, split: str = "test") -> Path:
    """A split CSV assigning only `writers` (all to `split`): how smoke runs evaluate a few writers."""
    from .splits import write_splits_csv

    if not writers:
        raise ValueError("no writers for the subset split")
    out = Path(out)
    write_splits_csv(out, {str(w): split for w in writers}, dataset)  # type: ignore[misc]
    return out
