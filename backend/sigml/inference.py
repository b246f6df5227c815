"""Serving: `Verifier` loads the weights and model card once and is the one interface the API uses.

It verifies pairs (`verify`, `verify_tensors`, `verify_pairs`), embeds references (`embed_tensors`), scores a
questioned signature against stored reference embeddings (`verify_against`, by the card's `reference_policy`),
checks references against each other (`reference_consistency`) and finds copies among references and uploads
(`copy_among`, the card's copy rule). Every answer comes from `decide`.

Embeddings come from an embedder (`sigml.embedders`): the ONNX export on an ONNX Runtime session (what the API
serves with: this module imports no torch, and neither does serving), or the torch model (channels-last and, on a
CPU with AVX-512, bfloat16 autocast; SIGVER_BF16=1/0 forces it on or off). Both give the same answers (tests).
Forward passes are serialised by a lock: with few cores, parallel forwards only contend. Preprocessed images are
1 x H x W float32 numpy arrays (ONNX) or torch tensors (torch: `Verifier.preprocess` gives the embedder's type);
every method takes either.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
from PIL import Image

from . import copies, decision, protocols
from .embedders import Embedder, OnnxEmbedder, TorchEmbedder, as_array, default_runtime, torch_available
from .errors import ModelLoadError
from .modelcard import CardError, ModelCard, card_path_for, file_sha256, require_weights_checksum
from .preprocessing import CropBox, ImageSource, preprocess_array

log = logging.getLogger(__name__)

EXPLAIN_BATCH = 16  # occluded variants per forward pass of `Verifier.explain` (bounds its memory)


def pair_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The embedding distance of a pair: what every pair answer, copy check and explanation compares."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


@dataclass(frozen=True)
class VerificationResult:
    """The answer of one verification: `decision` is the answer, `distance` (a profile's: `score`) the number it
    judged against the cuts in `decision_rates`."""

    distance: float
    # the protocol's equal-error-rate threshold: a reference point between the cuts, no answer of its own
    threshold: float
    model_version: str
    decision: str = "inconclusive"  # "genuine" / "inconclusive" / "forged": the three-way answer (sigml.decision)
    # the band's cuts and the rates measured on validation writers at this score (`Verifier.decide`)
    decision_rates: dict | None = None
    flags: tuple[str, ...] = ()  # e.g. copies.COPY_FLAG: the questioned image is a copy of a reference

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProfileVerificationResult(VerificationResult):
    """A questioned signature scored against K references (`ModelCard.reference_policy`): `score` is what the
    threshold and the decision band judge; `distance` holds the same value (the base class's name for it)."""

    distances: tuple[float, ...] = ()  # one per reference, in the order given
    copy_of: int | None = None  # index of the reference the questioned image is a copy of (flags has COPY_FLAG)
    # what `score` is: "normalized" (mean distance / the references' spread), "mean" (mean distance),
    # or "pairwise" (a single reference: the plain pair distance against the pairwise threshold)
    score_method: str = "mean"
    mean_distance: float = 0.0
    reference_spread: float | None = None  # mean pairwise distance among the references (>= 2 of them)

    @property
    def score(self) -> float:
        return self.distance

    def to_dict(self) -> dict:
        return {**asdict(self), "score": self.score}


# a preprocessed 1 x H x W image: a float32 numpy array, or a torch tensor (the torch embedder's type)
PreprocessedImage = Any
# something a questioned upload may be a copy of: its preprocessed image, a function that reads it (called for the
# closest such candidate only: reading a stored image costs), or None (no pixel comparison)
CandidateImage = Union[PreprocessedImage, Callable[[], Union[PreprocessedImage, None]], None]


@dataclass(frozen=True)
class CopyCandidate:
    embedding: np.ndarray
    same_bytes: bool = False  # byte-identical to the questioned upload (the caller compared sha256)
    image: CandidateImage = None
    # its `copies.fingerprint`, kept when it was enrolled: compared instead of its image (nothing is read)
    fingerprint: np.ndarray | None = None


class Verifier:
    """A trained Siamese model plus its model card, ready to verify signatures.

    `embedder`: an `sigml.embedders` embedder, or a torch `SiameseResNet18` (wrapped in a `TorchEmbedder` with
    `bf16`)."""

    def __init__(self, embedder: Embedder | Any, card: ModelCard, *, bf16: bool | None = None) -> None:
        self.embedder: Embedder = embedder if hasattr(embedder, "runtime") else TorchEmbedder(embedder, bf16=bf16)
        self.card = card
        self._lock = threading.Lock()

    @property
    def runtime(self) -> str:
        """What computes the embeddings: "onnx" or "torch"."""
        return self.embedder.runtime

    @property
    def model(self) -> Any:
        """The torch model (torch runtime only)."""
        if self.runtime != "torch":
            raise AttributeError("this Verifier serves the ONNX export: it has no torch model")
        return self.embedder.model

    @property
    def bf16(self) -> bool:
        return bool(getattr(self.embedder, "bf16", False))

    @classmethod
    def from_files(cls, weights_path: str | Path, card_path: str | Path | None = None, *, runtime: str = "torch",
                   threads: int | None = None, **kwargs) -> "Verifier":
        """The Verifier of the weights at `weights_path` and their model card (default: the .json next to them).

        `runtime`: "torch" (the weights, checked against the card's sha256), "onnx" (the card's ONNX export next to
        the card, checked against its sha256 and against the weights it was exported from; the weights file need
        not be read) or "auto" (ONNX when the card names an export, else torch). `threads`: the ONNX Runtime
        session's intra-op threads (None: one per core); torch's are set by the caller (`torch.set_num_threads`)."""
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise ModelLoadError(weights_path, "weights file not found")
        card_path = Path(card_path or card_path_for(weights_path))
        card = ModelCard.load(card_path)
        try:
            expected = require_weights_checksum(card)
        except CardError as exc:
            raise ModelLoadError(card_path, f"model card is not valid: {exc}") from exc
        onnx_path = cls._onnx_path(card, card_path, expected, runtime)
        if onnx_path is not None:
            try:
                embedder = OnnxEmbedder(onnx_path, threads=threads)
            except Exception as exc:  # onnxruntime's errors: a file that parses but is not a usable model
                raise ModelLoadError(onnx_path, f"ONNX Runtime cannot load it: {exc}") from exc
            return cls(embedder, card)
        if not torch_available():
            raise ModelLoadError(card_path, "torch is not installed (a serving install) and the model card names no "
                                 f"ONNX export to serve: run `python -m sigml export --model {weights_path}` where "
                                 "torch is" if not card.onnx else "torch is not installed: serve the ONNX export "
                                 "(SIGVER_RUNTIME=onnx or auto)")
        from .checkpoints import load_weights
        from .model import SiameseResNet18

        if file_sha256(weights_path) != expected:
            # a damaged file can still parse (flipped bytes in the tensor data), and weights swapped
            # under an old card would serve under the old model_version: both are refused
            raise ModelLoadError(
                weights_path, f"the file's sha256 is not the one recorded in its model card ({expected[:12]}...): "
                "the weights are corrupt or belong to another model card",
            )
        model = SiameseResNet18(card.architecture)
        load_weights(model, weights_path)
        return cls(model, card, **kwargs)

    @staticmethod
    def _onnx_path(card: ModelCard, card_path: Path, weights_sha256: str, runtime: str) -> Path | None:
        """The card's ONNX export to serve for `runtime`, checked; None: serve the torch model."""
        if runtime not in ("onnx", "torch", "auto"):
            raise ValueError(f"unknown runtime {runtime!r}: expected onnx, torch or auto")
        if runtime == "torch":
            return None
        if not card.onnx:
            if runtime == "onnx":
                raise ModelLoadError(card_path, "the model card names no ONNX export: run `python -m sigml export`")
            return None
        path = card_path.parent / str(card.onnx["file"])
        problem = None
        if card.onnx.get("weights_sha256") != weights_sha256:
            problem = "was exported from other weights than the card's: export it again (`python -m sigml export`)"
        elif not path.is_file():
            problem = "file not found"
        if problem and runtime == "auto" and torch_available():
            log.warning("%s: %s; serving the torch model instead", path, problem)
            return None
        if problem:
            raise ModelLoadError(path, f"the model card's ONNX export: {problem}")
        if file_sha256(path) != card.onnx["sha256"]:
            raise ModelLoadError(path, "the file's sha256 is not the one recorded in its model card: the ONNX "
                                 "export is corrupt or belongs to another model card")
        return path

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def model_version(self) -> str:
        return self.card.version

    def preprocess(self, source: ImageSource, crop: CropBox | None = None) -> PreprocessedImage:
        """`sigml.preprocessing.preprocess_array` of the card's config (after an optional `crop`), 1 x H x W, as the
        embedder's image type (a numpy array for ONNX, a tensor for torch)."""
        return self.embedder.wrap(preprocess_array(source, self.card.preprocessing, crop=crop)[None])

    def is_preprocessed(self, image: Any) -> bool:
        """Whether `image` is already a preprocessed image of this card (a tensor, or a 1 x H x W float array)."""
        cfg = self.card.preprocessing
        return hasattr(image, "detach") or (isinstance(image, np.ndarray) and image.dtype == np.float32
                                            and image.shape == (1, cfg.canvas_height, cfg.canvas_width))

    def embed_tensors(self, batch: Any, batch_size: int = 64, *, progress: bool = False) -> np.ndarray:
        """N x 1 x H x W preprocessed images (or a list of 1 x H x W ones; numpy or torch, float or uint8) → N x D
        float32 embeddings, one forward pass at a time."""
        if isinstance(batch, (list, tuple)):
            cfg = self.card.preprocessing
            batch = (np.stack([as_array(b) for b in batch]) if len(batch)
                     else np.zeros((0, 1, cfg.canvas_height, cfg.canvas_width), np.float32))
        with self._lock:
            return self.embedder.embed(batch, batch_size=batch_size, progress=progress)

    def decide(self, distance: float, protocol: str = "pairwise", *, copy: bool = False,
               from_a_page: bool = False) -> dict:
        """Every answer a score gets, from the model card: the three-way `decision` of the protocol's band, its cuts
        and the rates measured at this score (`decision_rates`), and the protocol's EER `threshold` (a reference
        point, no answer of its own). `copy`: the questioned image is a copy of a reference (`sigml.copies`):
        flagged, never genuine, inconclusive. `from_a_page`: a compared signature was cut from a page by the
        locator: never forged (`decision.on_a_page`), flagged when that changed the answer."""
        threshold = self.card.threshold_for(protocol)
        band = self.card.band(protocol)
        rates: dict = {"genuine_below": band["genuine_below"], "forged_above": band["forged_above"]}
        if copy:
            return {"threshold": threshold, "decision": "inconclusive", "flags": (copies.COPY_FLAG,),
                    "decision_rates": rates}
        curve = self.card.rate_curves.get(protocol)
        if curve:
            rates.update(decision.rates_at(curve, distance), measured_on="validation writers, never seen in training")
        decided = decision.decide(distance, band)
        if from_a_page and decision.on_a_page(decided) != decided:
            return {"threshold": threshold, "decision": decision.on_a_page(decided), "decision_rates": rates,
                    "flags": (decision.PAGE_FLAG,)}
        return {"threshold": threshold, "decision": decided, "decision_rates": rates}

    def is_copy(self, distance: float, *, same_bytes: bool = False, pixels: float | None = None) -> bool:
        """The card's copy rule (`sigml.copies.is_copy`); `pixels`: the fingerprints' `pixel_difference`."""
        return copies.is_copy(distance, same_bytes=same_bytes, threshold=self.card.copy_threshold, pixels=pixels,
                              pixel_threshold=self.card.copy_pixel_threshold)

    @staticmethod
    def pixel_difference(a: PreprocessedImage, b: PreprocessedImage) -> float:
        return copies.pixel_difference(copies.fingerprint(as_array(a)), copies.fingerprint(as_array(b)))

    def copy_among(self, embedding: np.ndarray, image: PreprocessedImage,
                   candidates: Sequence[CopyCandidate]) -> tuple[int, float] | None:
        """The candidate a questioned upload (`image`, embedded as `embedding`) is a copy of under the card's copy
        rule (a byte-identical one first, else the closest in the embedding), with its index and embedding
        distance; None if it is a copy of none. Candidates with a tensor are also compared as pictures; of those
        whose image is stored (a callable or a kept `fingerprint`), only the closest one is."""
        distances = [pair_distance(c.embedding, embedding) for c in candidates]
        lazy = [i for i, c in enumerate(candidates) if callable(c.image) or c.fingerprint is not None]
        closest_lazy = min(lazy, key=lambda i: distances[i]) if lazy else None
        for i in sorted(range(len(candidates)), key=lambda i: (not candidates[i].same_bytes, distances[i])):
            candidate = candidates[i]
            if candidate.fingerprint is not None:
                pixels = (copies.pixel_difference(candidate.fingerprint, copies.fingerprint(as_array(image)))
                          if i == closest_lazy else None)
            else:
                other = candidate.image() if i == closest_lazy else None if callable(candidate.image) else candidate.image
                pixels = self.pixel_difference(other, image) if other is not None else None
            if self.is_copy(distances[i], same_bytes=candidate.same_bytes, pixels=pixels):
                return i, distances[i]
        return None

    def verify_tensors(self, reference: PreprocessedImage, questioned: PreprocessedImage, *,
                       same_bytes: bool = False, from_a_page: bool = False) -> VerificationResult:
        """`same_bytes`: the two uploads are byte-identical (the caller compared their sha256); `from_a_page`: one
        of them was cut from a page by the locator (`decide`)."""
        emb = self.embed_tensors([reference, questioned])
        distance = pair_distance(emb[0], emb[1])
        copy = self.is_copy(distance, same_bytes=same_bytes, pixels=self.pixel_difference(reference, questioned))
        return VerificationResult(distance=distance, model_version=self.model_version,
                                  **self.decide(distance, copy=copy, from_a_page=from_a_page))

    def verify_pairs(self, images: Sequence[PreprocessedImage], pairs: Sequence[tuple[int, int]]) -> list[VerificationResult]:
        """Many pairs among preprocessed `images` (each embedded once, in batches), each answered as `verify`
        answers a pair; no copy rule (pairs of a dataset's own images)."""
        if not pairs:
            return []
        emb = self.embed_tensors(images)
        out = []
        for a, b in pairs:
            distance = pair_distance(emb[a], emb[b])
            out.append(VerificationResult(distance=distance, model_version=self.model_version, **self.decide(distance)))
        return out

    def verify(self, reference: ImageSource, questioned: ImageSource) -> VerificationResult:
        """Distance between two signatures (one batched forward pass) and its decision."""
        return self.verify_tensors(self.preprocess(reference), self.preprocess(questioned))

    def verify_against(self, reference_embeddings: np.ndarray | Sequence[np.ndarray],
                       questioned: ImageSource | PreprocessedImage, *, same_bytes_as: int | None = None,
                       closest_reference: Callable[[int], PreprocessedImage | None] | None = None,
                       reference_fingerprints: Sequence[np.ndarray | None] | None = None,
                       from_a_page: bool = False) -> ProfileVerificationResult:
        """Questioned signature vs stored reference embeddings, scored as the model card's `reference_policy` for
        that many references says (with a single reference there is no spread to normalise by: that is a pairwise
        comparison). `same_bytes_as`: index of a reference byte-identical to the questioned upload (the caller compared sha256);
        it, or a copy of the reference closest in the embedding (`closest_reference(i)` gives its preprocessed image
        for the pixel comparison), makes the answer a flagged copy. `reference_fingerprints[i]`: reference i's
        `copies.fingerprint` kept at enrolment, compared instead of reading its image. `from_a_page`: the questioned
        signature was cut from a page by the locator (`decide`)."""
        refs = np.asarray(reference_embeddings, dtype=np.float32)
        if refs.ndim != 2 or len(refs) == 0:
            raise ValueError("at least one reference embedding is needed")
        tensor = questioned if self.is_preprocessed(questioned) else self.preprocess(questioned)
        q = self.embed_tensors([tensor])[0]
        distances = np.linalg.norm(refs - q[None, :], axis=1)
        mean_distance = float(distances.mean())
        spread = protocols.reference_spread(refs)
        policy = self.card.reference_policy(len(refs))
        score = float(policy.scores(q, refs)[0])
        read = closest_reference if closest_reference is not None and same_bytes_as is None else None
        kept = list(reference_fingerprints) if reference_fingerprints is not None else [None] * len(refs)
        copy = self.copy_among(q, tensor, [
            CopyCandidate(ref, same_bytes=i == same_bytes_as, fingerprint=kept[i] if same_bytes_as is None else None,
                          image=functools.partial(read, i) if read and kept[i] is None else None)
            for i, ref in enumerate(refs)])
        copy_of = copy[0] if copy is not None else None
        return ProfileVerificationResult(
            distance=score, model_version=self.model_version,
            **self.decide(score, policy.protocol, copy=copy_of is not None, from_a_page=from_a_page),
            distances=tuple(float(x) for x in distances), score_method=policy.score_method,
            mean_distance=mean_distance, reference_spread=spread, copy_of=copy_of,
        )

    def reference_consistency(self, reference_embeddings: np.ndarray | Sequence[np.ndarray]) -> list[dict]:
        """Each enrolled reference scored against the profile's other references as a questioned signature would be
        (`reference_policy` of the others, needs at least 3 references so the others have a spread): `outlier` when
        that score would be decided forged, i.e. the others do not recognise it: a wrong or damaged reference to
        remove. Returns one {"score", "outlier"} per reference (score None and outlier False with fewer than 3)."""
        refs = np.asarray(reference_embeddings, dtype=np.float32)
        if len(refs) < 3:
            return [{"score": None, "outlier": False} for _ in refs]
        policy = self.card.reference_policy(len(refs) - 1)
        band = self.card.band(policy.protocol)
        out = []
        for i in range(len(refs)):
            score = float(policy.scores(refs[i], np.delete(refs, i, axis=0))[0])
            out.append({"score": score, "outlier": decision.decide(score, band) == "forged"})
        return out

    def explain(self, reference: PreprocessedImage, questioned: PreprocessedImage, patch: int = 15,
                batch_size: int = EXPLAIN_BATCH) -> dict[str, np.ndarray]:
        """Occlusion sensitivity: how much hiding each patch of ink moves the distance.

        Returns H x W maps in [0, 1] for both preprocessed images (1 = the patch whose occlusion
        changes the distance most). Patches without ink are skipped (their occlusion changes nothing).
        Both images and all their occluded variants go through the embedder as one batch (in chunks of
        `batch_size`, which bounds the memory of a forward pass).
        """
        images = {"reference": as_array(reference), "questioned": as_array(questioned)}
        cells, variants = {}, [images["reference"], images["questioned"]]
        for name, image in images.items():
            _, h, w = image.shape
            cells[name] = [(y, x) for y in range(0, h, patch) for x in range(0, w, patch)
                           if float(image[:, y : y + patch, x : x + patch].sum()) > 0]
            for y, x in cells[name]:
                variant = image.copy()
                variant[:, y : y + patch, x : x + patch] = 0
                variants.append(variant)
        emb = self.embed_tensors(np.stack(variants), batch_size=batch_size)
        base = pair_distance(emb[0], emb[1])
        maps, start = {}, 2
        for name, other in (("reference", emb[1]), ("questioned", emb[0])):
            _, h, w = images[name].shape
            heat = np.zeros((h, w), dtype=np.float32)
            n = len(cells[name])
            dists = np.linalg.norm(emb[start : start + n] - other[None, :], axis=1)
            start += n
            for (y, x), d in zip(cells[name], dists):
                heat[y : y + patch, x : x + patch] = abs(float(d) - base)
            peak = float(heat.max()) if n else 0.0
            if peak > 0:
                heat /= peak
            maps[name] = heat
        return maps


def overlay_png(image: PreprocessedImage, heat: np.ndarray) -> bytes:
    """The preprocessed signature (dark ink on white) with the heatmap in red, as PNG bytes."""
    ink = np.squeeze(as_array(image))
    base = 1.0 - 0.85 * ink
    rgb = np.stack([base, base, base], axis=-1)
    alpha = 0.75 * np.clip(heat, 0, 1)[..., None]
    red = np.array([0.9, 0.1, 0.1], dtype=np.float32)
    rgb = (1 - alpha) * rgb + alpha * red
    buf = io.BytesIO()
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def load_verifier(weights_path: str, runtime: str | None = None, threads: int | None = None) -> Verifier:
    """The process-wide Verifier for `weights_path`, loaded once (one ONNX Runtime session per process).
    `runtime`: "onnx", "torch" or "auto" (ONNX when the model card names an export); None: SIGVER_RUNTIME (default
    "auto"). `threads`: the ONNX Runtime session's intra-op threads (None: one per core), used by the call that
    loads it (later calls return the loaded Verifier whatever they pass)."""
    with _LOADING:
        _LOAD_THREADS[0] = threads
        return _load_verifier(str(weights_path), runtime or default_runtime())


_LOADING = threading.Lock()
_LOAD_THREADS: list[int | None] = [None]


@functools.lru_cache(maxsize=4)
def _load_verifier(weights_path: str, runtime: str) -> Verifier:
    started = time.perf_counter()
    verifier = Verifier.from_files(weights_path, runtime=runtime, threads=_LOAD_THREADS[0])
    log.info("loaded %s from %s (%s) in %.2fs", verifier.model_version, weights_path, verifier.runtime,
             time.perf_counter() - started)
    return verifier


load_verifier.cache_clear = _load_verifier.cache_clear  # type: ignore[attr-defined]
load_verifier.cache_info = _load_verifier.cache_info  # type: ignore[attr-defined]
