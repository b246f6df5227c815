"""The model card: a JSON file next to the weights that says how to use them.

It carries the architecture and the preprocessing config (so serving preprocesses exactly as
training did), the calibrated thresholds, the decision bands, the Platt fits of validation scores, the metrics
with their protocol, and the data, split and training config the weights came from.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import protocols
from .errors import ModelLoadError
from .architecture import ModelConfig
from .preprocessing import PreprocessConfig
from .protocols import REFERENCE_SCORES

PROTOCOLS = ("pairwise", "reference_based")


# --------------------------------------------------------------------------------------------
# the card's schema: checked on every load, so a card that would decide wrongly never serves

MIN_CANVAS_SIDE, MAX_CANVAS_SIDE = 16, 2048  # pixels of the network's input canvas
MAX_CANVAS_ASPECT = 8.0  # wider than 8:1 (or taller) leaves the ink a line a few pixels thick
MAX_PIXELS_LIMIT = 1_000_000_000  # preprocessing.max_pixels: above this the decompression-bomb guard is off
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


class CardError(ValueError):
    """A model card field that fails the schema; `field` is its dotted path (`decision_bands.pairwise.forged_above`)."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


def _number(data: dict, key: str, where: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, required: bool = False, integer: bool = False) -> float | None:
    """A finite number (a JSON bool is not one) within [low, high] (`low_open`: above low), or None when absent."""
    name = f"{where}.{key}" if where else key
    if key not in data or data[key] is None:
        if required:
            raise CardError(name, "is required")
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise CardError(name, f"must be {'an integer' if integer else 'a number'}, not {value!r}")
    if not math.isfinite(value):
        raise CardError(name, f"must be a finite number, not {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise CardError(name, f"must be {'above' if low_open else 'at least'} {low}, not {value!r}")
    if high is not None and value > high:
        raise CardError(name, f"must be at most {high}, not {value!r}")
    return float(value)


def _mapping(data: dict, key: str, where: str = "") -> dict:
    name = f"{where}.{key}" if where else key
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CardError(name, f"must be an object, not {type(value).__name__}")
    return value


def validate_card(data: Any) -> None:
    """Check a model card's JSON against its schema; raise `CardError` naming the first field that fails.

    Types, finite numbers and ranges of every field serving reads (thresholds, calibrations, decision cuts and the
    rate curves, copy thresholds, architecture, preprocessing), the order of the cuts (genuine_below <= the EER
    threshold <= forged_above), a canvas the network can use, max_pixels > 0, and the form of weights.sha256 where
    given (serving requires it: `require_weights_checksum`), and of the optional ONNX export (`onnx`: its file
    name, sha256, the sha256 of the weights it was exported from, opset). Unknown extra keys are kept, not refused."""
    if not isinstance(data, dict):
        raise CardError("(card)", f"must be a JSON object, not {type(data).__name__}")
    name = data.get("name", "siamese_resnet18")
    if not isinstance(name, str) or not CARD_NAME.fullmatch(name):
        raise CardError("name", f"must be 1-100 letters, digits, '_', '.' or '-', not {name!r}")
    thresholds = _mapping(data, "thresholds")
    for protocol in thresholds:
        if protocol not in PROTOCOLS:
            raise CardError(f"thresholds.{protocol}", f"unknown protocol; choose among {', '.join(PROTOCOLS)}")
        _number(thresholds, protocol, "thresholds", low=0.0, low_open=True, required=True)
    if "threshold" not in data and "pairwise" not in thresholds:
        raise CardError("threshold", "is required (or thresholds.pairwise)")
    threshold = _number(data, "threshold", "", low=0.0, low_open=True) or float(thresholds["pairwise"])
    for key in ("calibration", "reference_calibration"):
        cal = _mapping(data, key)
        for k in cal:
            _number(cal, k, key, low=0.0 if k == "spread_floor" else None)
    if str(data.get("reference_score", "mean")) not in REFERENCE_SCORES:
        raise CardError("reference_score", f"must be one of {REFERENCE_SCORES}, not {data.get('reference_score')!r}")
    bands = _mapping(data, "decision_bands")
    for protocol, band in bands.items():
        where = f"decision_bands.{protocol}"
        if protocol not in PROTOCOLS:
            raise CardError(where, f"unknown protocol; choose among {', '.join(PROTOCOLS)}")
        if not isinstance(band, dict):
            raise CardError(where, "must be an object")
        low = _number(band, "genuine_below", where, required=True)
        high = _number(band, "forged_above", where, low=0.0, required=True)
        for rate in ("target_far", "target_frr"):
            _number(band, rate, where, low=0.0, high=1.0)
        eer = threshold if protocol == "pairwise" else float(thresholds.get(protocol, threshold))
        if not low <= high:
            raise CardError(where, f"genuine_below ({low}) must not be above forged_above ({high})")
        if not low <= eer <= high:
            raise CardError(where, f"the cuts [{low}, {high}] must hold the protocol's EER threshold ({eer})")
    for protocol, curve in _mapping(data, "rate_curves").items():
        where = f"rate_curves.{protocol}"
        if protocol not in PROTOCOLS or not isinstance(curve, dict):
            raise CardError(where, f"must be an object under one of {', '.join(PROTOCOLS)}")
        columns = {}
        for key in ("score", "far", "frr"):
            values = curve.get(key)
            if not isinstance(values, list) or not values:
                raise CardError(f"{where}.{key}", "must be a non-empty list of numbers")
            for i in range(len(values)):
                _number(dict(enumerate(values)), i, f"{where}.{key}", required=True,
                        **({"low": 0.0, "high": 1.0} if key != "score" else {}))
            columns[key] = values
        if len({len(v) for v in columns.values()}) != 1:
            raise CardError(where, "score, far and frr must have the same length")
        if any(b < a for a, b in zip(columns["score"], columns["score"][1:])):
            raise CardError(f"{where}.score", "must be in increasing order")
    for key in ("copy_threshold", "copy_pixel_threshold"):
        _number(data, key, "", low=0.0)
    arch = _mapping(data, "architecture")
    _number(arch, "embedding_dim", "architecture", low=1, high=4096, integer=True)
    _number(arch, "hidden_dim", "architecture", low=1, high=65536, integer=True)
    if "normalize" in arch and not isinstance(arch["normalize"], bool):
        raise CardError("architecture.normalize", f"must be true or false, not {arch['normalize']!r}")
    pre = _mapping(data, "preprocessing")
    height = _number(pre, "canvas_height", "preprocessing", low=MIN_CANVAS_SIDE, high=MAX_CANVAS_SIDE, integer=True)
    width = _number(pre, "canvas_width", "preprocessing", low=MIN_CANVAS_SIDE, high=MAX_CANVAS_SIDE, integer=True)
    defaults = PreprocessConfig()
    height, width = height or defaults.canvas_height, width or defaults.canvas_width
    if max(height, width) > MAX_CANVAS_ASPECT * min(height, width):
        raise CardError("preprocessing.canvas_width", f"a {int(height)}x{int(width)} canvas is more than "
                        f"{MAX_CANVAS_ASPECT:g} times wider than high (or higher than wide)")
    _number(pre, "margin", "preprocessing", low=0, high=min(height, width) / 4, integer=True)
    for key in ("min_component_fraction", "min_ink_fraction"):
        _number(pre, key, "preprocessing", low=0.0, high=0.5)
    _number(pre, "min_contrast", "preprocessing", low=0.0, high=1.0)
    _number(pre, "max_pixels", "preprocessing", low=0, low_open=True, high=MAX_PIXELS_LIMIT, integer=True)
    weights = _mapping(data, "weights")
    sha = weights.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not SHA256_HEX.fullmatch(sha)):
        raise CardError("weights.sha256", f"must be 64 lower-case hex digits, not {sha!r}")
    onnx = _mapping(data, "onnx")
    if onnx:
        name = onnx.get("file")
        if not isinstance(name, str) or not name.endswith(".onnx") or Path(name).name != name:
            raise CardError("onnx.file", f"must be the file name (no folder) of an .onnx file, not {name!r}")
        for key in ("sha256", "weights_sha256"):
            if not isinstance(onnx.get(key), str) or not SHA256_HEX.fullmatch(onnx[key]):
                raise CardError(f"onnx.{key}", f"must be 64 lower-case hex digits, not {onnx.get(key)!r}")
        _number(onnx, "opset", "onnx", low=7, high=100, integer=True)
    for key in ("metrics", "data", "training"):
        _mapping(data, key)


def require_weights_checksum(card: "ModelCard") -> str:
    """The weights' sha256 a card must carry to serve: without it any weights would load under it, with its
    version "@unversioned", and stored embeddings would not be recomputed after a swap."""
    sha = str(card.weights.get("sha256") or "")
    if not SHA256_HEX.fullmatch(sha):
        raise CardError("weights.sha256", "is required to serve: the checksum of the weights this card belongs to "
                        "(`sigml train` writes it)")
    return sha


@dataclass(frozen=True)
class ReferencePolicy:
    """How a questioned signature is scored against K references: the one rule serving (`Verifier.verify_against`,
    `Verifier.reference_consistency`) and evaluation (`sigml evaluate`, the benchmark) share.

    With K >= 2 the card's `reference_score` ("normalized" or "mean", its spread floor and the reference-based
    threshold, band and calibration); with a single reference there is no spread to normalise by: the plain pair
    distance against the pairwise threshold, band and calibration (`score_method` "pairwise")."""

    k: int
    score_method: str  # what the score is: "normalized", "mean" or "pairwise"
    protocol: str  # whose threshold, band and calibration apply (`ModelCard.threshold_for(protocol)`, `band`)
    spread_floor: float = 0.0

    @property
    def reference_score(self) -> str:
        """The `protocols.REFERENCE_SCORES` formula: a single reference's pair distance is its mean distance."""
        return "mean" if self.score_method == "pairwise" else self.score_method

    def scores(self, questioned: np.ndarray, references: np.ndarray) -> np.ndarray:
        """The score of each questioned embedding against these references (lower = more genuine)."""
        return protocols.reference_scores(questioned, references, self.reference_score, spread_floor=self.spread_floor)


@dataclass
class ModelCard:
    architecture: ModelConfig
    preprocessing: PreprocessConfig
    threshold: float  # the pairwise distance threshold, calibrated on validation writers at their EER
    # the other protocols' thresholds ("reference_based"); the pairwise one is `threshold`: `threshold_for` reads
    # both (the JSON repeats it as thresholds["pairwise"] for older readers)
    thresholds: dict[str, float] = field(default_factory=dict)
    # Platt fits (slope, intercept) of validation scores, P(genuine) = sigmoid(slope * score + intercept): a record of
    # how the validation scores fell, written by training and `sigml calibrate` and kept by every card; no answer
    # reads it (the answer is the decision). `reference_calibration` also holds `spread_floor`, which scoring uses.
    calibration: dict[str, float] = field(default_factory=dict)
    # how a questioned signature is scored against enrolled references (protocols.REFERENCE_SCORES);
    # cards written before "normalized" existed were calibrated on the plain mean distance
    reference_score: str = "mean"
    reference_calibration: dict[str, float] = field(default_factory=dict)  # slope, intercept, spread_floor
    # per protocol: the three-way decision's cuts and the rate curve they were read from (sigml.decision);
    # cards written before them decide two-way at the EER threshold (`band`)
    decision_bands: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate_curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # embedding distance at or below which a questioned image is a copy of a reference (sigml.copies)
    copy_threshold: float | None = None
    copy_pixel_threshold: float | None = None  # fingerprint difference at or below which it is a copy (sigml.copies)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)  # file, sha256, dtype
    # the ONNX export of the embedding network (`sigml.export`), served by ONNX Runtime: file (next to the card),
    # sha256, weights_sha256 (the weights it was exported from), opset; empty when there is none
    onnx: dict[str, Any] = field(default_factory=dict)
    name: str = "siamese_resnet18"
    created: str = ""
    git_commit: str = ""
    notes: str = ""

    @property
    def version(self) -> str:
        sha = str(self.weights.get("sha256", ""))[:8] or "unversioned"
        return f"{self.name}@{sha}"

    def __post_init__(self) -> None:
        pairwise = self.thresholds.get("pairwise")
        if pairwise is not None and not math.isclose(float(pairwise), float(self.threshold), rel_tol=1e-9):
            raise ValueError(f"thresholds['pairwise'] ({pairwise}) is not the card's threshold ({self.threshold})")
        self.thresholds = {p: float(v) for p, v in self.thresholds.items() if p != "pairwise"}

    def threshold_for(self, protocol: str = "pairwise") -> float:
        """The EER threshold of a protocol: `threshold` for pairs; a card without a reference-based one (older
        cards, scored by the mean distance) uses the pairwise threshold for references too."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
        return float(self.threshold if protocol == "pairwise" else self.thresholds.get(protocol, self.threshold))

    def reference_policy(self, k: int) -> ReferencePolicy:
        """How a questioned signature is scored against `k` references (see `ReferencePolicy`)."""
        if k < 1:
            raise ValueError("at least one reference is needed")
        if k == 1:
            return ReferencePolicy(k=1, score_method="pairwise", protocol="pairwise")
        return ReferencePolicy(k=k, score_method=self.reference_score, protocol="reference_based",
                               spread_floor=float(self.reference_calibration.get("spread_floor", 0.0)))

    def band(self, protocol: str = "pairwise") -> dict[str, Any]:
        """The decision band of a protocol; without one (older cards), both cuts at the EER threshold."""
        if protocol in self.decision_bands:
            return self.decision_bands[protocol]
        threshold = self.threshold_for(protocol)
        return {"genuine_below": threshold, "forged_above": threshold}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "git_commit": self.git_commit,
            "architecture": self.architecture.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "threshold": self.threshold,
            "thresholds": {"pairwise": self.threshold, **{p: v for p, v in self.thresholds.items() if p != "pairwise"}},
            "calibration": self.calibration,
            "reference_score": self.reference_score,
            "reference_calibration": self.reference_calibration,
            "decision_bands": self.decision_bands,
            "rate_curves": self.rate_curves,
            "copy_threshold": self.copy_threshold,
            "copy_pixel_threshold": self.copy_pixel_threshold,
            "metrics": self.metrics,
            "data": self.data,
            "training": self.training,
            "weights": self.weights,
            **({"onnx": self.onnx} if self.onnx else {}),
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        """A card from its JSON, checked against the schema first (`validate_card`: a `CardError` names the field)."""
        validate_card(data)
        thresholds = {k: float(v) for k, v in data.get("thresholds", {}).items()}
        threshold = float(data["threshold"]) if "threshold" in data else thresholds["pairwise"]
        thresholds.pop("pairwise", None)  # older cards repeat `threshold` there
        return cls(
            architecture=ModelConfig.from_dict(data.get("architecture", {})),
            preprocessing=PreprocessConfig.from_dict(data.get("preprocessing", {})),
            threshold=threshold,
            thresholds=thresholds,
            calibration={k: float(v) for k, v in data.get("calibration", {}).items()},
            reference_score=str(data.get("reference_score", "mean")),
            reference_calibration={k: float(v) for k, v in data.get("reference_calibration", {}).items()},
            decision_bands={protocol: {**band, "genuine_below": float(band["genuine_below"]),
                                       "forged_above": float(band["forged_above"])}
                            for protocol, band in data.get("decision_bands", {}).items()},
            rate_curves=dict(data.get("rate_curves", {})),
            copy_threshold=None if data.get("copy_threshold") is None else float(data["copy_threshold"]),
            copy_pixel_threshold=(None if data.get("copy_pixel_threshold") is None
                                  else float(data["copy_pixel_threshold"])),
            metrics=data.get("metrics", {}),
            data=data.get("data", {}),
            training=data.get("training", {}),
            weights=data.get("weights", {}),
            onnx=dict(data.get("onnx") or {}),
            name=data.get("name", "siamese_resnet18"),
            created=data.get("created", ""),
            git_commit=data.get("git_commit", ""),
            notes=data.get("notes", ""),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(path, "model card (JSON) not found")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(path, f"model card is not valid: {exc}") from exc


def card_path_for(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
