"""Actions: verify two signatures, verify dataset pairs, manage profiles and references, verify a profile."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.contrib.auth.models import AbstractBaseUser

from config.errors import ApplicationError, Conflict, NotFound
from config.storage import chunked, files_delete_on_commit, files_sweep
from sigml import copies
from sigml.errors import ImageError
from sigml.embedders import as_array
from sigml.inference import CopyCandidate, PreprocessedImage, Verifier, overlay_png
from sigml.pairs import Pair
from sigml.preprocessing import CropBox, to_png

from audit.models import VerificationRecord
from audit.services import AUDIT_FOLDER, RecordedImage, Requester, verification_record_create

from .uploads import (
    UploadedImage, from_a_page, image_locate, png_data_uri, upload_auto_crops, upload_warnings, uploads_preprocess, used_crop,
)
from .models import Profile, Reference
from .selectors import Dataset, dataset_image_path, dataset_pairs_sample
from .model_loader import verifier_get

log = logging.getLogger(__name__)

EXPLANATION_NOTE = "red = regions whose occlusion changes the distance most"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


# --- verify two images ------------------------------------------------------------------------------

def _recorded(image: UploadedImage) -> RecordedImage:
    return RecordedImage(sha256=image.sha256, name=image.name, data=image.data, extension=image.extension)


def verify_pair(*, reference: UploadedImage, questioned: UploadedImage, requester: Requester | None = None,
                previews: bool = False, explain: bool = False, reference_crop: CropBox | None = None,
                questioned_crop: CropBox | None = None, auto_crop: bool = False,
                deadline: float | None = None) -> dict[str, Any]:
    """Distance and decision of two uploaded signatures (one batched forward pass), optionally with
    previews of what the network saw and an occlusion-sensitivity explanation; `auto_crop`: a page is judged on its
    best located signature (said in `auto_crops`). Its case record is written with `requester` (one insert of what
    is held here: the uploads' names, sha256 and bytes)."""
    started = time.perf_counter()
    verifier = verifier_get()
    crops = {field: box for field, box in {reference.field: reference_crop, questioned.field: questioned_crop}.items()
             if box is not None}
    ref_tensor, q_tensor = uploads_preprocess(verifier=verifier, images=[reference, questioned], crops=crops,
                                              auto_crop=auto_crop, deadline=deadline)
    # a copy only when the same bytes were judged on the same part (both whole, or cropped alike)
    same_bytes = reference.sha256 == questioned.sha256 and used_crop(reference, crops) == used_crop(questioned, crops)
    out: dict[str, Any] = verifier.verify_tensors(ref_tensor, q_tensor, same_bytes=same_bytes,
                                                  from_a_page=from_a_page(reference) or from_a_page(questioned)).to_dict()
    out["warnings"] = upload_warnings([reference, questioned])
    out["auto_crops"] = upload_auto_crops([reference, questioned], [ref_tensor, q_tensor])
    if previews:
        out["previews"] = {"reference": png_data_uri(to_png(ref_tensor)), "questioned": png_data_uri(to_png(q_tensor))}
    if explain:
        heat = verifier.explain(ref_tensor, q_tensor)
        out["explanation"] = {
            "method": "occlusion",
            "reference": png_data_uri(overlay_png(ref_tensor, heat["reference"])),
            "questioned": png_data_uri(overlay_png(q_tensor, heat["questioned"])),
            "note": EXPLANATION_NOTE,
        }
    out["elapsed_ms"] = _elapsed_ms(started)
    verification_record_create(kind="pair", requester=requester or Requester(), result=out,
                               questioned=_recorded(questioned), references=[_recorded(reference)])
    return out


def signatures_locate(*, image: UploadedImage, deadline: float | None = None) -> dict[str, Any]:
    """Where the handwritten signatures are on an uploaded page, cheque or form (`sigml.locate`), best first."""
    started = time.perf_counter()
    found = image_locate(verifier=verifier_get(), image=image, deadline=deadline)
    return {"signatures": found, "count": len(found), "image_size": [image.width, image.height],
            "note": LOCATE_NOTE, "elapsed_ms": _elapsed_ms(started)}


# The locator's measured quality (bench/locate.py, docs/results.md), said with every answer so nobody takes an empty
# list for "no signature here".
LOCATE_NOTE = ("Boxes from the signature locator, best first. It finds about 19 in 20 signatures on synthetic "
               "test documents (docs/results.md): an empty list does not mean there is no signature; draw the crop "
               "yourself.")


# --- dataset pairs ----------------------------------------------------------------------------------

def pair_truth(pair: Pair) -> str:
    return "genuine" if pair.label == 1 else "forged"


def dataset_pairs_verify(*, dataset: Dataset, split: str, kind: str, limit: int, seed: int) -> dict[str, Any]:
    """Run the model on sampled pairs: every distinct image is preprocessed and embedded once, in one batch."""
    started = time.perf_counter()
    verifier = verifier_get()
    pairs = dataset_pairs_sample(dataset=dataset, split=split, kind=kind, limit=limit, seed=seed)
    paths = list(dict.fromkeys(p for pair in pairs for p in (pair.path_a, pair.path_b)))
    tensors: dict[str, PreprocessedImage] = {}
    for path in paths:
        try:
            tensors[path] = verifier.preprocess(dataset_image_path(dataset=dataset, path=path))
        except (ImageError, OSError, NotFound) as exc:
            log.warning("dataset %s: skipping %s: %s", dataset.name, path, exc)
    usable = [p for p in pairs if p.path_a in tensors and p.path_b in tensors]
    index = {path: i for i, path in enumerate(tensors)}
    answers = verifier.verify_pairs(list(tensors.values()), [(index[p.path_a], index[p.path_b]) for p in usable])
    results = []
    for pair, answer in zip(usable, answers):
        truth = pair_truth(pair)
        results.append({
            "pair": pair, "label": truth, "score": answer.distance, "score_method": "pairwise",
            "decision": answer.decision,
            # judged by the decision: right, wrong, or (inconclusive) neither
            "correct": None if answer.decision == "inconclusive" else answer.decision == truth,
        })
    n = len(results)

    def share(outcome: bool | None) -> float | None:
        return (sum(r["correct"] is outcome for r in results) / n) if n else None

    return {
        "results": results,
        "accuracy": share(True),
        "inconclusive": share(None),
        "wrong": share(False),
        "n": n,
        "skipped": len(pairs) - n,
        "threshold": verifier.threshold,
        "model_version": verifier.model_version,
        "elapsed_ms": _elapsed_ms(started),
    }


# --- profiles ---------------------------------------------------------------------------------------

def _external_id_taken(*, owner: AbstractBaseUser, external_id: str, taken_by: int | None = None) -> Conflict:
    return Conflict(
        f"you already have a profile with the external id {external_id!r}; open it, or choose another id.",
        code="external_id_taken", details={"external_id": external_id, "profile": taken_by})


def _profile_save(*, profile: Profile, update_fields: list[str] | None = None) -> Profile:
    """Save, turning a clash on the owner's external id into a Conflict (also when two requests race: the
    database's unique constraint decides)."""
    if profile.external_id:
        other = (Profile.objects.filter(owner=profile.owner_id, external_id=profile.external_id)
                 .exclude(pk=profile.pk).values_list("pk", flat=True).first())
        if other is not None:
            raise _external_id_taken(owner=profile.owner, external_id=profile.external_id, taken_by=other)
    try:
        with transaction.atomic():
            profile.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise _external_id_taken(owner=profile.owner, external_id=profile.external_id) from exc
    except DatabaseError as exc:  # an update of a row deleted meanwhile (a PATCH racing a DELETE) saves nothing
        if update_fields is not None and not Profile.objects.filter(pk=profile.pk).exists():
            raise NotFound("No Profile matches the given query.") from exc
        raise
    return profile


def profile_create(*, owner: AbstractBaseUser, name: str, external_id: str = "") -> Profile:
    return _profile_save(profile=Profile(owner=owner, name=name, external_id=external_id))


def profile_update(*, profile: Profile, name: str | None = None, external_id: str | None = None) -> Profile:
    fields = []
    if name is not None:
        profile.name = name
        fields.append("name")
    if external_id is not None:
        profile.external_id = external_id
        fields.append("external_id")
    if fields:
        _profile_save(profile=profile, update_fields=[*fields, "updated"])
    return profile


@transaction.atomic
def profile_delete(*, profile: Profile) -> None:
    """Deletes the profile, its references and (after the commit) their image files."""
    names = [n for n in profile.references.values_list("image", flat=True) if n]
    profile.delete()
    files_delete_on_commit(names)


@transaction.atomic
def profiles_delete_of_owner(*, owner: AbstractBaseUser) -> None:
    """Deletes every profile of `owner`, their references and (after the commit) the reference images: what
    deleting an account removes of this app."""
    names = [n for n in Reference.objects.filter(profile__owner=owner).values_list("image", flat=True) if n]
    Profile.objects.filter(owner=owner).delete()
    files_delete_on_commit(names)


# --- references -------------------------------------------------------------------------------------

def _references_limit_check(*, profile: Profile, adding: int) -> None:
    limit = settings.SIGVER_MAX_REFERENCES_PER_PROFILE
    existing = profile.references.count()
    if existing + adding > limit:
        raise ApplicationError(
            f"a profile holds at most {limit} references; it has {existing} and {adding} were sent.",
            code="too_many_references", details={"limit": limit, "existing": existing},
        )


def _references_duplicates_check(*, verifier: Verifier, profile: Profile, images: list[UploadedImage],
                                  tensors: list[PreprocessedImage], embeddings: list) -> None:
    """Refuse (Conflict `duplicate_reference`) an upload that is the same image as an enrolled reference or as
    another upload of the batch, byte for byte or as a near-identical copy (`Verifier.copy_among`: the pixel
    comparison against the other uploads and the closest enrolled reference, by the fingerprint kept with it:
    no stored image is decoded; a byte-identical one is named first, else the closest):
    a repeated image adds no evidence and shrinks the references' spread, which makes every later score look
    worse than it is."""
    enrolled = [r for r in profile.references.order_by("id") if r.model_version == verifier.model_version]
    kept = _references_fingerprints(verifier=verifier, references=enrolled)
    for i, image in enumerate(images):
        field = image.field
        candidates = [CopyCandidate(r.embedding_array(), same_bytes=r.sha256 == image.sha256, fingerprint=f)
                      for r, f in zip(enrolled, kept)]
        candidates += [CopyCandidate(embeddings[j], same_bytes=images[j].sha256 == image.sha256, image=tensors[j])
                       for j in range(i)]
        found = verifier.copy_among(embeddings[i], tensors[i], candidates)
        if found is not None:
            index, distance = found
            duplicate = enrolled[index] if index < len(enrolled) else None
            label = f"reference {duplicate.pk}" if duplicate is not None else f"`{images[index - len(enrolled)].field}`"
            raise Conflict(
                f"`{field}` is the same image as {label} (a repeated or copied image adds no evidence); "
                "enrol a different signature of the person.", code="duplicate_reference",
                details={"field": field, "duplicate_of": duplicate.pk if duplicate is not None else None,
                         "distance": round(distance, 6)})


def references_create(*, profile: Profile, images: list[UploadedImage], crops: dict[str, CropBox] | None = None,
                      auto_crop: bool = False, deadline: float | None = None) -> list[Reference]:
    """Store genuine references with their embeddings (all images embedded in one batch); all or nothing.
    `crops` maps an upload's field to the box it is judged on, `auto_crop` judges a page on its best located
    signature; the box used is stored with the reference, so a new model re-embeds the same part of the image.

    The limit is checked early (no decoding for a full profile) and again inside the write transaction
    with the profile's row locked (select_for_update; on SQLite the IMMEDIATE transaction holds the
    database's write lock), so simultaneous uploads cannot push a profile past it."""
    _references_limit_check(profile=profile, adding=len(images))
    verifier = verifier_get()
    tensors = uploads_preprocess(verifier=verifier, images=images, crops=crops, auto_crop=auto_crop, deadline=deadline)
    embeddings = verifier.embed_tensors(tensors)
    _references_duplicates_check(verifier=verifier, profile=profile, images=images, tensors=tensors,
                                 embeddings=embeddings)
    saved: list[str] = []
    try:
        with transaction.atomic():
            list(Profile.objects.select_for_update().filter(pk=profile.pk).values_list("pk", flat=True))  # row lock
            _references_limit_check(profile=profile, adding=len(images))
            references = []
            for image, tensor, embedding in zip(images, tensors, embeddings):
                reference = Reference(
                    profile=profile, content_type=image.content_type, width=image.width, height=image.height,
                    size_bytes=len(image.data), sha256=image.sha256, embedding=Reference.encode_embedding(embedding),
                    embedding_dim=int(embedding.shape[0]), model_version=verifier.model_version,
                    fingerprint=reference_fingerprint(verifier=verifier, tensor=tensor),
                    crop=list(box) if (box := used_crop(image, crops)) is not None else None,
                    from_a_page=from_a_page(image),
                )
                reference.image.save(f"reference.{image.extension}", ContentFile(image.data), save=False)
                saved.append(reference.image.name)
                reference.save()
                references.append(reference)
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return references


@transaction.atomic
def reference_delete(*, reference: Reference) -> None:
    name = reference.image.name
    reference.delete()
    files_delete_on_commit([name] if name else [])


REFERENCE_FOLDER = "references"


def _references_named(names: list[str]) -> set[str]:
    known: set[str] = set()
    for batch in chunked(names):
        known.update(Reference.objects.filter(image__in=batch).values_list("image", flat=True))
    return known


def _records_named(names: list[str]) -> set[str]:
    wanted, known = set(names), set()
    for files in (VerificationRecord.objects.exclude(image_files=[]).values_list("image_files", flat=True)
                  .iterator(chunk_size=2000)):
        known.update(n for n in (files or []) if n in wanted)
    return known


def stored_files_sweep(*, dry_run: bool = False) -> list[str]:
    """Delete the files under MEDIA_ROOT/references/ and MEDIA_ROOT/audit/ that no row names, and the temporary
    files of killed processes (`config.storage.files_sweep`: no age rule; uploads in flight in live workers are
    kept through their journals); returns their storage names.

    A file is written whole before its row is created, so a killed process (SIGKILL, OOM killer, power loss) leaves
    at most a file without a row, never a row without its file: biometric data nobody can reach, removed here. Run
    at every worker start (SIGVER_WORKER_START_HOOKS, run by config/gunicorn.py) and by
    `manage.py sweep_reference_files`."""
    return files_sweep({REFERENCE_FOLDER: _references_named, AUDIT_FOLDER: _records_named}, dry_run=dry_run)


def reference_fingerprint(*, verifier: Verifier, tensor: PreprocessedImage) -> bytes:
    """What the copy check compares of a reference (`sigml.copies.fingerprint` of its preprocessed image), kept
    with it at enrolment: the stored image is never decoded to check a copy."""
    return Reference.encode_fingerprint(copies.fingerprint(as_array(tensor)))


def _fingerprint_shape(verifier: Verifier) -> tuple[int, int]:
    pre = verifier.card.preprocessing
    return pre.canvas_height // copies.FINGERPRINT_POOL, pre.canvas_width // copies.FINGERPRINT_POOL


def _references_fingerprints(*, verifier: Verifier, references: list[Reference]) -> list:
    """The kept fingerprints of these references (current model version); one kept before this field existed is
    computed from its stored image once and saved (or by `manage.py reference_fingerprints`); None if unreadable."""
    shape = _fingerprint_shape(verifier)
    out, missing = [], []
    for reference in references:
        kept = reference.fingerprint_array(shape)
        if kept is None:
            tensor = _reference_tensor(verifier=verifier, reference=reference)
            if tensor is not None:
                reference.fingerprint = reference_fingerprint(verifier=verifier, tensor=tensor)
                missing.append(reference)
                kept = reference.fingerprint_array(shape)
        out.append(kept)
    if missing:
        Reference.objects.bulk_update(missing, ["fingerprint"])
    return out


def references_fingerprints_fill(*, batch: int = 200) -> int:
    """Compute and keep the fingerprint of every reference of the current model version that lacks one; returns
    how many (`manage.py reference_fingerprints`)."""
    verifier = verifier_get()
    shape = _fingerprint_shape(verifier)
    done = 0
    query = Reference.objects.filter(model_version=verifier.model_version).order_by("pk")
    for start in range(0, query.count(), batch):
        chunk = [r for r in query[start:start + batch] if r.fingerprint_array(shape) is None]
        done += sum(f is not None for f in _references_fingerprints(verifier=verifier, references=chunk))
    return done


def _reference_tensor(*, verifier: Verifier, reference: Reference) -> PreprocessedImage | None:
    """A stored reference's preprocessed image (for the copy rule's pixel comparison); None if it cannot be read."""
    try:
        with reference.image.open("rb") as fh:
            return verifier.preprocess(fh.read(), crop=reference.crop_box())
    except (OSError, ImageError) as exc:
        log.warning("reference %s cannot be read: %s", reference.pk, exc)
        return None


def _references_reembed(*, verifier: Verifier, references: list[Reference]) -> list[Reference]:
    """Embeddings stored under another model version are recomputed (once) from the stored images."""
    usable, tensors = [], []
    for reference in references:
        try:
            with reference.image.open("rb") as fh:
                tensors.append(verifier.preprocess(fh.read(), crop=reference.crop_box()))
            usable.append(reference)
        except (OSError, ImageError) as exc:
            log.warning("reference %s cannot be re-embedded: %s", reference.pk, exc)
    if usable:
        embeddings = verifier.embed_tensors(tensors)
        for reference, tensor, embedding in zip(usable, tensors, embeddings):
            reference.embedding = Reference.encode_embedding(embedding)
            reference.embedding_dim = int(embedding.shape[0])
            reference.model_version = verifier.model_version
            reference.fingerprint = reference_fingerprint(verifier=verifier, tensor=tensor)  # the new preprocessing's
        Reference.objects.bulk_update(usable, ["embedding", "embedding_dim", "model_version", "fingerprint"])
    return usable


def profile_verify(*, profile: Profile, questioned: UploadedImage, requester: Requester | None = None,
                   crop: CropBox | None = None, auto_crop: bool = False,
                   deadline: float | None = None) -> dict[str, Any]:
    """A questioned signature against the profile's stored reference embeddings: one forward pass (`auto_crop`: a
    page is judged on its best located signature, said in `auto_crops`); its case record is written with
    `requester` (the references by their stored sha256, never re-read)."""
    started = time.perf_counter()
    references = list(profile.references.order_by("id"))
    if not references:
        raise ApplicationError("the profile has no references; upload genuine references first.", code="no_references")
    verifier = verifier_get()
    crops = {questioned.field: crop} if crop else None
    (tensor,) = uploads_preprocess(verifier=verifier, images=[questioned], crops=crops, auto_crop=auto_crop,
                                   deadline=deadline)
    current = [r for r in references if r.model_version == verifier.model_version]
    stale = [r for r in references if r.model_version != verifier.model_version]
    if stale:
        current += _references_reembed(verifier=verifier, references=stale)
        current.sort(key=lambda r: r.pk)
        if not current:
            raise ApplicationError("none of the profile's references can be used; upload them again.", code="no_references")
    judged_on = used_crop(questioned, crops)  # a copy: the same bytes judged on the same part (both whole, or alike)
    same_bytes_as = next((i for i, r in enumerate(current)
                          if r.sha256 == questioned.sha256 and r.crop_box() == judged_on), None)
    result = verifier.verify_against(  # the copy check compares kept fingerprints: no stored image is decoded
        [r.embedding_array() for r in current], tensor, same_bytes_as=same_bytes_as,
        reference_fingerprints=_references_fingerprints(verifier=verifier, references=current),
        from_a_page=from_a_page(questioned) or any(r.from_a_page for r in current))
    out = result.to_dict()
    distances = out.pop("distances")
    copy_of = out.pop("copy_of")
    out["copy_of_reference"] = current[copy_of].pk if copy_of is not None else None
    out["references"] = [{"id": r.pk, "distance": d} for r, d in zip(current, distances)]
    out["reference_count"] = len(current)
    out["warnings"] = upload_warnings([questioned])
    out["auto_crops"] = upload_auto_crops([questioned], [tensor])
    out["elapsed_ms"] = _elapsed_ms(started)
    verification_record_create(
        kind="profile", requester=requester or Requester(), result=out, questioned=_recorded(questioned),
        references=[RecordedImage(sha256=r.sha256, name=f"reference {r.pk}") for r in current],
        profile_id=profile.pk, profile_name=profile.name)
    return out
