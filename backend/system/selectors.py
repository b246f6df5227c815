"""Reads of the server's own state: health (model and database), the served model's card and its plots."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from config.errors import NotFound
from signatures.model_loader import verifier_get
from sigml.errors import ModelLoadError

log = logging.getLogger(__name__)

PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def model_card_get() -> dict[str, Any]:
    return verifier_get().card.to_dict()


def model_plot_names() -> list[str]:
    """PNGs in SIGVER_PLOTS_DIR and one level below it (`sigml evaluate --plots docs/plots/CEDAR` writes
    `CEDAR/pairwise.png`, listed as `CEDAR-pairwise`)."""
    folder = Path(settings.SIGVER_PLOTS_DIR)
    if not folder.is_dir():
        return []
    names = [p.stem for p in folder.glob("*.png")]
    # a dataset's name may hold hyphens (BHSig260-Bengali); a plot's stem does not (pairwise, reference_k10)
    names += [f"{p.parent.name}-{p.stem}" for p in folder.glob("*/*.png") if "-" not in p.stem]
    servable = []
    for name in sorted(set(names)):
        try:
            model_plot_path(name=name)
        except NotFound:
            continue  # e.g. a symlink out of the folder: not listed, not served
        servable.append(name)
    return servable


def model_plot_path(*, name: str) -> Path:
    if not PLOT_NAME.match(name):
        raise NotFound("no such plot")
    folder = Path(settings.SIGVER_PLOTS_DIR).resolve()
    candidates = [folder / f"{name}.png"]
    if "-" in name:
        sub, stem = name.rsplit("-", 1)
        candidates.append(folder / sub / f"{stem}.png")
    for candidate in (c.resolve() for c in candidates):
        if candidate.is_relative_to(folder) and candidate.is_file():
            return candidate
    raise NotFound("no such plot")


@dataclass(frozen=True)
class Health:
    model_loaded: bool
    model_version: str | None
    database: str
    model_sha256: str | None = None  # the weights' checksum the card names and the loaded file matched

    @property
    def ok(self) -> bool:
        return self.model_loaded and self.database == "ok"

    @property
    def status(self) -> str:
        return "ok" if self.ok else "degraded"


def health_get() -> Health:
    try:
        verifier = verifier_get()
        model_loaded, version, sha256 = True, verifier.model_version, str(verifier.card.weights.get("sha256"))
    except ModelLoadError as exc:
        log.error("health: %s", exc)
        model_loaded, version, sha256 = False, None, None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except DatabaseError:
        log.exception("health: database unavailable")
        database = "unavailable"
    return Health(model_loaded=model_loaded, model_version=version, database=database, model_sha256=sha256)
