"""Serving: `Verifier` loads the weights and model card once and is the one interface the API uses.

It verifies pairs (`verify`, `verify_tensors`, `verify_pairs`), embeds references (`embed_tensors`), scores a
questioned signature against stored reference embeddings (`verify_against`, by the card's `reference_policy`),
checks references against each other (`reference_consistency`) and finds copies among references and uploads
(`copy_among`, the card's copy rule). Every answer comes from `decide`.

Forward passes use channels-last and, on a CPU with AVX-512, bfloat16 autocast (SIGVER_BF16=1/0 forces it on or
off; docs/performance.md has the speed-up; an AVX2-only CPU emulates bf16 many times slower than float32) and are serialised by a lock: with few cores, parallel forwards only contend.
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import torch
from PIL import Image

from . import copies, decision, protocols
from .checkpoints import load_weights
from .embedding import bf16_native, embed_tensors
from .env import env_flag
from .errors import ModelLoadError
from .model import SiameseResNet18
from .modelcard import CardError, ModelCard, card_path_for, file_sha256, require_weights_checksum
from .preprocessing import ImageSource, preprocess

log = logging.getLogger(__name__)


def pair_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The embedding distance of a pair: what every pair answer, copy check and explanation compares."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


@dataclass(frozen=True)
class VerificationResult:
    distance: float
    threshold: float
    match: bool
    verdict: str  # "genuine" or "forged": the two-way answer at the EER `threshold` (kept for compatibility)
    similarity: float
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


# something a questioned upload may be a copy of: its preprocessed image, a function that reads it (called for the
# closest such candidate only: reading a stored image costs), or None (no pixel comparison)
CandidateImage = Union[torch.Tensor, Callable[[], Union[torch.Tensor, None]], None]


@dataclass(frozen=True)
class CopyCandidate:
    embedding: np.ndarray
    same_bytes: bool = False  # byte-identical to the questioned upload (the caller compared sha256)
    image: CandidateImage = None
    # its `copies.fingerprint`, kept when it was enrolled: compared instead of its image (nothing is read)
    fingerprint: np.ndarray | None = None


class Verifier:
    """A trained Siamese model plus its model card, ready to verify signatures."""

    def __init__(self, model: SiameseResNet18, card: ModelCard, *, bf16: bool | None = None) -> None:
        self.model = model.eval()
        self.card = card
        self.bf16 = env_flag("SIGVER_BF16", bf16_native()) if bf16 is None else bf16
        self.model = self.model.to(memory_format=torch.channels_last)
        self._lock = threading.Lock()

    @classmethod
    def from_files(cls, weights_path: str | Path, card_path: str | Path | None = None, **kwargs) -> "Verifier":
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise ModelLoadError(weights_path, "weights file not found")
        card_path = Path(card_path or card_path_for(weights_path))
        card = ModelCard.load(card_path)
        try:
            expected = require_weights_checksum(card)
        except CardError as exc:
            raise ModelLoadError(card_path, f"model card is not valid: {exc}") from exc
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

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def model_version(self) -> str:
        return self.card.version

    def preprocess(self, source: ImageSource) -> torch.Tensor:
        return preprocess(source, self.card.preprocessing)

    def embed_tensors(self, batch: torch.Tensor | Sequence[torch.Tensor], batch_size: int = 64, *,
                      progress: bool = False) -> np.ndarray:
        """N x 1 x H x W preprocessed tensors (or a list of 1 x H x W ones) → N x D float32 embeddings
        (`sigml.embedding.embed_tensors`, one forward pass at a time)."""
        if not isinstance(batch, torch.Tensor):
            batch = torch.stack(list(batch)) if len(batch) else torch.zeros(0, 1, 1, 1)
        with self._lock:
            return embed_tensors(self.model, batch, bf16=self.bf16, batch_size=batch_size, progress=progress)

    def embed(self, sources: Sequence[ImageSource]) -> np.ndarray:
        return self.embed_tensors([self.preprocess(s) for s in sources])

    def decide(self, distance: float, protocol: str = "pairwise", *, copy: bool = False) -> dict:
        """Every answer a score gets, from the model card: the two-way `verdict` at the EER threshold (`match`),
        the three-way `decision` of the protocol's band, the calibrated `similarity`, and `decision_rates`.
        `copy`: the questioned image is a copy of a reference (`sigml.copies`): flagged, never genuine, inconclusive."""
        threshold = self.card.threshold_for(protocol)
        band = self.card.band(protocol)
        rates: dict = {"genuine_below": band["genuine_below"], "forged_above": band["forged_above"]}
        if copy:
            return {"threshold": threshold, "match": False, "verdict": "forged", "similarity": 0.0,
                    "decision": "inconclusive", "flags": (copies.COPY_FLAG,), "decision_rates": rates}
        match = bool(distance <= threshold)
        curve = self.card.rate_curves.get(protocol)
        if curve:
            rates.update(decision.rates_at(curve, distance), measured_on="validation writers, never seen in training")
        return {"threshold": threshold, "match": match, "verdict": "genuine" if match else "forged",
                "similarity": self.card.similarity(distance, protocol), "decision": decision.decide(distance, band),
                "decision_rates": rates}

    def is_copy(self, distance: float, *, same_bytes: bool = False, pixels: float | None = None) -> bool:
        """The card's copy rule (`sigml.copies.is_copy`); `pixels`: the fingerprints' `pixel_difference`."""
        return copies.is_copy(distance, same_bytes=same_bytes, threshold=self.card.copy_threshold, pixels=pixels,
                              pixel_threshold=self.card.copy_pixel_threshold)

    @staticmethod
    def pixel_difference(a: torch.Tensor, b: torch.Tensor) -> float:
        return copies.pixel_difference(copies.fingerprint(a.numpy()), copies.fingerprint(b.numpy()))

    def copy_among(self, embedding: np.ndarray, image: torch.Tensor,
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
                pixels = (copies.pixel_difference(candidate.fingerprint, copies.fingerprint(image.numpy()))
                          if i == closest_lazy else None)
            else:
                other = candidate.image() if i == closest_lazy else None if callable(candidate.image) else candidate.image
                pixels = self.pixel_difference(other, image) if other is not None else None
            if self.is_copy(distances[i], same_bytes=candidate.same_bytes, pixels=pixels):
                return i, distances[i]
        return None

    def verify_tensors(self, reference: torch.Tensor, questioned: torch.Tensor, *,
                       same_bytes: bool = False) -> VerificationResult:
        """`same_bytes`: the two uploads are byte-identical (the caller compared their sha256)."""
        emb = self.embed_tensors([reference, questioned])
        distance = pair_distance(emb[0], emb[1])
        copy = self.is_copy(distance, same_bytes=same_bytes, pixels=self.pixel_difference(reference, questioned))
        return VerificationResult(distance=distance, model_version=self.model_version, **self.decide(distance, copy=copy))

    def verify_pairs(self, images: Sequence[torch.Tensor], pairs: Sequence[tuple[int, int]]) -> list[VerificationResult]:
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
        """Distance between two signatures (one batched forward pass) and the calibrated verdict."""
        return self.verify_tensors(self.preprocess(reference), self.preprocess(questioned))

    def verify_against(self, reference_embeddings: np.ndarray | Sequence[np.ndarray],
                       questioned: ImageSource | torch.Tensor, *, same_bytes_as: int | None = None,
                       closest_reference: Callable[[int], torch.Tensor | None] | None = None,
                       reference_fingerprints: Sequence[np.ndarray | None] | None = None) -> ProfileVerificationResult:
        """Questioned signature vs stored reference embeddings, scored as the model card's `reference_policy` for
        that many references says (with a single reference there is no spread to normalise by: that is a pairwise
        comparison). `same_bytes_as`: index of a reference byte-identical to the questioned upload (the caller compared sha256);
        it, or a copy of the reference closest in the embedding (`closest_reference(i)` gives its preprocessed image
        for the pixel comparison), makes the answer a flagged copy. `reference_fingerprints[i]`: reference i's
        `copies.fingerprint` kept at enrolment, compared instead of reading its image."""
        refs = np.asarray(reference_embeddings, dtype=np.float32)
        if refs.ndim != 2 or len(refs) == 0:
            raise ValueError("at least one reference embedding is needed")
        tensor = questioned if isinstance(questioned, torch.Tensor) else self.preprocess(questioned)
        q = self.embed_tensors(tensor.unsqueeze(0))[0]
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
            **self.decide(score, policy.protocol, copy=copy_of is not None),
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

    def explain(self, reference: torch.Tensor, questioned: torch.Tensor, patch: int = 15) -> dict[str, np.ndarray]:
        """Occlusion sensitivity: how much hiding each patch of ink moves the distance.

        Returns H x W maps in [0, 1] for both preprocessed images (1 = the patch whose occlusion
        changes the distance most). Patches without ink are skipped (their occlusion changes nothing).
        """
        emb = self.embed_tensors([reference, questioned])
        base = pair_distance(emb[0], emb[1])
        maps = {}
        for name, image, other in (("reference", reference, emb[1]), ("questioned", questioned, emb[0])):
            _, h, w = image.shape
            cells = [(y, x) for y in range(0, h, patch) for x in range(0, w, patch)
                     if float(image[:, y : y + patch, x : x + patch].sum()) > 0]
            heat = np.zeros((h, w), dtype=np.float32)
            if cells:
                variants = image.repeat(len(cells), 1, 1, 1)
                for i, (y, x) in enumerate(cells):
                    variants[i, :, y : y + patch, x : x + patch] = 0
                dists = np.linalg.norm(self.embed_tensors(variants) - other[None, :], axis=1)
                for (y, x), d in zip(cells, dists):
                    heat[y : y + patch, x : x + patch] = abs(float(d) - base)
                peak = float(heat.max())
                if peak > 0:
                    heat /= peak
            maps[name] = heat
        return maps


def overlay_png(image: torch.Tensor | np.ndarray, heat: np.ndarray) -> bytes:
    """The preprocessed signature (dark ink on white) with the heatmap in red, as PNG bytes."""
    ink = np.squeeze(image.numpy() if isinstance(image, torch.Tensor) else image).astype(np.float32)
    base = 1.0 - 0.85 * ink
    rgb = np.stack([base, base, base], axis=-1)
    alpha = 0.75 * np.clip(heat, 0, 1)[..., None]
    red = np.array([0.9, 0.1, 0.1], dtype=np.float32)
    rgb = (1 - alpha) * rgb + alpha * red
    buf = io.BytesIO()
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=4)
def load_verifier(weights_path: str) -> Verifier:
    """The process-wide Verifier for `weights_path`, loaded once."""
    started = time.perf_counter()
    verifier = Verifier.from_files(weights_path)
    log.info("loaded %s from %s in %.2fs", verifier.model_version, weights_path, time.perf_counter() - started)
    return verifier
