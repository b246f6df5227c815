"""Dataset layouts, readers and importers.

Each layout is a small class with its facts as attributes, registered by name so the CLI can
offer `choices=`. A reader returns `SignatureRecord`s: dataset, writer id, genuine/forged, path.
Paths in records are relative to the dataset root so manifests stay portable.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from .errors import DatasetError

log = logging.getLogger(__name__)

Label = Literal["genuine", "forged"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pgm", ".ppm"}


@dataclass(frozen=True, order=True)
class SignatureRecord:
    dataset: str
    writer: str
    label: Label
    path: str  # relative to the dataset root, POSIX separators

    @property
    def genuine(self) -> bool:
        return self.label == "genuine"


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: "w2" before "w10"."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _images(folder: Path) -> list[Path]:
    """The image files directly in `folder`, in natural order (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )


class Layout:
    """A folder convention for signature datasets."""

    name: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def detect(cls, root: Path) -> bool:
        raise NotImplementedError

    @classmethod
    def read(cls, root: Path, dataset: str) -> list[SignatureRecord]:
        raise NotImplementedError


class CedarLayout(Layout):
    """`person_N/original/*.png` and `person_N/forged/*.png` (the published organized CEDAR)."""

    name = "cedar"
    description = "person_N/original/*, person_N/forged/*"
    genuine_dir, forged_dir = "original", "forged"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(p.is_dir() and p.name.startswith("person_") and (p / cls.genuine_dir).is_dir() for p in root.iterdir())

    @classmethod
    def read(cls, root: Path, dataset: str) -> list[SignatureRecord]:
        records = []
        for person in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
            if not (person.is_dir() and person.name.startswith("person_")):
                continue
            writer = person.name.removeprefix("person_")
            for folder, label in ((cls.genuine_dir, "genuine"), (cls.forged_dir, "forged")):
                for image in _images(person / folder):
                    records.append(SignatureRecord(dataset, writer, label, image.relative_to(root).as_posix()))
        return records


class GpdsLayout(Layout):
    """`{train,test}/N/genuine/*` and `{train,test}/N/forge/*`: the same writers in both halves."""

    name = "gpds"
    description = "{train,test}/N/genuine/*, {train,test}/N/forge/*"

    @classmethod
    def detect(cls, root: Path) -> bool:
        for half in ("train", "test"):
            folder = root / half
            if folder.is_dir() and any((d / "genuine").is_dir() for d in folder.iterdir() if d.is_dir()):
                return True
        return False

    @classmethod
    def read(cls, root: Path, dataset: str) -> list[SignatureRecord]:
        records = []
        for half in ("train", "test"):  # merged by writer id: the halves split samples, not writers
            folder = root / half
            if not folder.is_dir():
                continue
            for writer_dir in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
                if not writer_dir.is_dir():
                    continue
                for subfolder, label in (("genuine", "genuine"), ("forge", "forged")):
                    for image in _images(writer_dir / subfolder):
                        records.append(SignatureRecord(dataset, writer_dir.name, label, image.relative_to(root).as_posix()))
        return sorted(records, key=lambda r: (natural_key(r.writer), r.label, natural_key(r.path)))


class GenericLayout(Layout):
    """`<writer>/genuine/*` and `<writer>/forged/*`, any image type PIL reads."""

    name = "generic"
    description = "<writer>/genuine/*, <writer>/forged/*"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(p.is_dir() and (p / "genuine").is_dir() for p in root.iterdir())

    @classmethod
    def read(cls, root: Path, dataset: str) -> list[SignatureRecord]:
        records = []
        for writer_dir in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
            if not writer_dir.is_dir():
                continue
            for label in ("genuine", "forged"):
                for image in _images(writer_dir / label):
                    records.append(SignatureRecord(dataset, writer_dir.name, label, image.relative_to(root).as_posix()))
        return records


LAYOUTS: dict[str, type[Layout]] = {c.name: c for c in (CedarLayout, GpdsLayout, GenericLayout)}
LAYOUT_CHOICES = ("auto", *LAYOUTS)


def detect_layout(root: str | Path) -> str:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    for name, layout in LAYOUTS.items():
        if layout.detect(root):
            return name
    raise DatasetError(
        f"cannot recognise the dataset layout of {root}; expected one of: "
        + "; ".join(f"{n} ({c.description})" for n, c in LAYOUTS.items())
    )


def read_dataset(root: str | Path, layout: str = "auto", name: str | None = None) -> list[SignatureRecord]:
    """All signature records under `root`; raises `DatasetError` if none are found."""
    root = Path(root)
    if layout not in LAYOUT_CHOICES:
        raise DatasetError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUT_CHOICES)}")
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    if layout == "auto":
        layout = detect_layout(root)
    records = LAYOUTS[layout].read(root, name or root.name)
    if not records:
        raise DatasetError(f"no signature images found in {root} (layout {layout})")
    if not any(r.genuine for r in records):
        raise DatasetError(f"no genuine signatures found in {root} (layout {layout})")
    return records


# --- importers from raw downloads into the generic layout -------------------------------------

RAW_PATTERNS: dict[str, list[tuple[re.Pattern[str], Label]]] = {
    # CEDAR: full_org/original_W_S.png, full_forg/forgeries_W_S.png
    "cedar": [
        (re.compile(r"^original_(?P<writer>\d+)_(?P<sample>\d+)\.\w+$", re.I), "genuine"),
        (re.compile(r"^forgeries_(?P<writer>\d+)_(?P<sample>\d+)\.\w+$", re.I), "forged"),
    ],
    # GPDS: c-WWW-SS.jpg (genuine), cf-WWW-SS.jpg (forgery)
    "gpds": [
        (re.compile(r"^c-(?P<writer>\d+)-(?P<sample>\d+)\.\w+$", re.I), "genuine"),
        (re.compile(r"^cf-(?P<writer>\d+)-(?P<sample>\d+)\.\w+$", re.I), "forged"),
    ],
    # BHSig260: B-S-1-G-01.tif / H-S-1-F-01.tif (script prefix, writer, G/F, sample)
    "bhsig": [
        (re.compile(r"^(?P<script>[A-Z]+)-S-(?P<writer>\d+)-G-(?P<sample>\d+)\.\w+$", re.I), "genuine"),
        (re.compile(r"^(?P<script>[A-Z]+)-S-(?P<writer>\d+)-F-(?P<sample>\d+)\.\w+$", re.I), "forged"),
    ],
}
IMPORT_CHOICES = tuple(RAW_PATTERNS)


def import_raw(kind: str, src: str | Path, dst: str | Path) -> int:
    """Copy a raw download (`kind` in IMPORT_CHOICES) into the generic layout; returns files copied."""
    if kind not in RAW_PATTERNS:
        raise DatasetError(f"unknown raw dataset kind {kind!r}; choose one of {', '.join(IMPORT_CHOICES)}")
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DatasetError(f"source folder not found: {src}")
    copied = 0
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        for pattern, label in RAW_PATTERNS[kind]:
            match = pattern.match(path.name)
            if match:
                writer = str(int(match["writer"]))
                if "script" in match.groupdict():
                    writer = f"{match['script'].upper()}{writer}"
                target = dst / writer / label / f"{writer}_{int(match['sample'])}{path.suffix.lower()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied += 1
                break
    if copied == 0:
        raise DatasetError(f"no {kind} signature files recognised under {src}")
    log.info("imported %d files from %s into %s", copied, src, dst)
    return copied
