"""Pieces every page shares: cached reads, friendly errors, the Verify and Explain upload flow, the decision and the score's scale.

No HTTP here: everything goes through `api_client`.
"""

from __future__ import annotations

import hashlib
import html
import io
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import streamlit as st
from PIL import Image, ImageOps, UnidentifiedImageError

import api_client as api

# text colours at 4.5:1 or more on their own background and on the scale's darker stops (WCAG AA)
GENUINE_COLOUR = "#176c33"
FORGED_COLOUR = "#9e2119"
GENUINE_BG = "#e3f4e8"
FORGED_BG = "#fbe4e2"
INCONCLUSIVE_COLOUR = "#7a4f00"
INCONCLUSIVE_BG = "#fff4d6"

PAIR_KEY = "pair"  # session_state: {"reference": {"name", "data"}, "questioned": {...}} shared by Verify and Explain
TOKEN_KEY = "token"
USERNAME_KEY = "username"
AUTH_NOTICE_KEY = "auth_notice"

# --------------------------------------------------------------------------------------------
# user-supplied text in markdown

# every ASCII character Markdown, GitHub tables, Streamlit's directives (:red[...], :material/...:), LaTeX ($) or
# HTML give a meaning to; a backslash before any ASCII punctuation shows it as itself (CommonMark)
MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>~$:&\"'=^%@/;?,")


def md_text(value: Any) -> str:
    """Text a user typed (a profile name, a user name, an external id, a file name) or a server echoed, made safe to
    put in a Streamlit markdown string (st.markdown, st.caption, st.info, image captions, labels...): shown as the
    characters typed, never as formatting, a link, an image, HTML or a new table row. Line breaks and tabs become
    one space (a line break could start a heading, a list or a table row). Pages never pass user text to
    `unsafe_allow_html`."""
    text = " ".join(str(value).split())
    out = []
    for i, ch in enumerate(text):
        intraword_underscore = (ch == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum()
                                and text[i + 1].isalnum())  # never emphasis in GFM: clerk_ab12 stays readable
        out.append("\\" + ch if ch in MARKDOWN_SPECIAL and not intraword_underscore else ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# client and cached reads (the base URL is part of every cache key; `_token`, the signed-in clerk's token the
# request is sent with, is not: these answers are the same for everyone, only whose budget pays differs)


def client(token: str | None = None) -> api.SigverClient:
    """A client that sends the signed-in clerk's token (so the API counts each clerk's requests on their own),
    or none when nobody is signed in."""
    return api.SigverClient(token=token or st.session_state.get(TOKEN_KEY))


@st.cache_data(ttl=10, show_spinner=False)
def cached_health(base_url: str) -> dict[str, Any]:
    return api.SigverClient(base_url).health()


@st.cache_data(ttl=60, show_spinner=False)
def cached_model_card(base_url: str, _token: str | None = None) -> dict[str, Any]:
    return api.SigverClient(base_url, token=_token).model_card()


@st.cache_data(ttl=60, show_spinner=False)
def cached_model_plot(base_url: str, name: str, _token: str | None = None) -> bytes | None:
    try:
        return api.SigverClient(base_url, token=_token).model_plot(name)
    except api.NotFound:
        return None


@st.cache_data(ttl=60, show_spinner=False)
def cached_datasets(base_url: str, _token: str | None = None) -> list[dict[str, Any]]:
    return api.SigverClient(base_url, token=_token).datasets()


@st.cache_data(ttl=60, show_spinner=False)
def cached_dataset(base_url: str, name: str, _token: str | None = None) -> dict[str, Any]:
    return api.SigverClient(base_url, token=_token).dataset(name)


@st.cache_data(ttl=60, show_spinner=False)
def cached_writer(base_url: str, dataset: str, writer: str, _token: str | None = None) -> dict[str, Any]:
    return api.SigverClient(base_url, token=_token).writer(dataset, writer)


DEFAULT_UPLOAD_LIMIT_MB = 10  # the API's default SIGVER_MAX_UPLOAD_BYTES, 10 MiB


@st.cache_data(ttl=300, show_spinner=False)
def cached_upload_limit_mb(base_url: str) -> int:
    """The API's per-file upload limit (`limits.max_upload_bytes` of GET /api/) in MiB, rounded down so that
    the widget never accepts what the server refuses; the default when the server does not say."""
    try:
        limit = int(api.SigverClient(base_url).index()["limits"]["max_upload_bytes"])
    except (api.ApiError, KeyError, TypeError, ValueError):
        return DEFAULT_UPLOAD_LIMIT_MB
    return max(1, limit // (1024 * 1024))


def upload_limit_mb() -> int:
    """For every upload widget's `max_upload_size`: it then shows the server's limit, not Streamlit's 200 MB."""
    return cached_upload_limit_mb(api.api_url())


@st.cache_data(ttl=600, max_entries=400, show_spinner=False)
def cached_dataset_image(base_url: str, url: str, _token: str | None = None) -> bytes:
    """Dataset images are public and immutable: keep their PNG thumbnails for a while."""
    raw = api.SigverClient(base_url, token=_token).dataset_image(url)
    return thumbnail_png(raw) or raw


# --------------------------------------------------------------------------------------------
# errors


def show_api_error(exc: api.ApiError, action: str = "") -> None:
    """One clear sentence per kind of failure; never a traceback."""
    prefix = f"{action}: " if action else ""
    message = md_text(exc.message) if exc.message else ""  # server messages may echo a file name or a user's text
    if isinstance(exc, api.BackendUnavailable):
        st.error(f"{prefix}{message}", icon=":material/cloud_off:")
    elif isinstance(exc, api.Throttled):
        wait = f" Please wait {exc.retry_after:.0f} seconds and try again." if exc.retry_after else " Please wait a moment and try again."
        st.warning(f"{prefix}Too many requests in a short time.{wait}", icon=":material/hourglass_top:")
    elif isinstance(exc, api.AuthError):
        st.warning(f"{prefix}{message or 'Please sign in again.'}", icon=":material/key:")
    elif isinstance(exc, api.NotFound):
        st.warning(f"{prefix}{message or 'Not found.'}", icon=":material/search_off:")
    elif isinstance(exc, api.BadRequest):
        st.error(f"{prefix}{message}", icon=":material/warning:")
    else:
        st.error(f"{prefix}The server had a problem: {message}", icon=":material/warning:")


@contextmanager
def api_errors(action: str = "", on_auth_error: Callable[[api.AuthError], None] | None = None) -> Iterator[None]:
    """`with api_errors("Verification failed"):` shows a friendly message for any ApiError and carries on."""
    try:
        yield
    except api.AuthError as exc:
        if on_auth_error is not None:
            on_auth_error(exc)
        else:
            show_api_error(exc, action)
    except api.ApiError as exc:
        show_api_error(exc, action)


# --------------------------------------------------------------------------------------------
# images


def thumbnail_png(data: bytes | None, max_side: int = 800) -> bytes | None:
    """Any image PIL reads (TIFF and BMP included, which browsers do not show) -> PNG bytes, or None."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            img = img.convert("RGBA") if img.mode in ("P", "LA", "RGBA", "PA") else img.convert("RGB")
            img.thumbnail((max_side, max_side))
            if img.mode == "RGBA":  # transparency on white, as the backend does
                bg = Image.new("RGB", img.size, "white")
                bg.paste(img, mask=img.getchannel("A"))
                img = bg
            out = io.BytesIO()
            img.save(out, format="PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def alt_text(text: str) -> str:
    """An image's text alternative (`alt`, plain text, read by screen readers; never markdown): one line."""
    return " ".join(str(text).split())


def show_image(data: bytes | None, caption: str = "", width: int | str = "stretch", alt: str | None = None) -> None:
    """The image as PNG with its caption and a text alternative (`alt`, the caption's words unless given)."""
    png = thumbnail_png(data)
    shown = md_text(caption)  # captions are markdown and often name an uploaded file
    if png is None:
        st.info(f"{shown}: no preview available for this file." if shown else "No preview available.")
    else:
        st.image(png, caption=shown or None, width=width, alt=alt_text(alt or caption or "Signature image"))


def digest(*parts: bytes | None) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p or b"")
        h.update(b"|")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# the shared reference/questioned pair (Verify and Explain)


def pair() -> dict[str, dict[str, Any]]:
    return st.session_state.setdefault(PAIR_KEY, {})


def _store_upload(role: str, widget_key: str) -> None:
    uploaded = st.session_state.get(widget_key)
    if uploaded is None:
        pair().pop(role, None)
    else:
        pair()[role] = {"name": uploaded.name, "data": uploaded.getvalue()}


def pair_uploader(role: str, label: str, key_prefix: str, help: str | None = None) -> dict[str, Any] | None:
    """A file uploader whose file is kept in session_state, so it survives going to another page and back."""
    widget_key = f"{key_prefix}_{role}"
    st.file_uploader(
        label, type=api.IMAGE_TYPES, key=widget_key, help=help,
        on_change=_store_upload, args=(role, widget_key), max_upload_size=upload_limit_mb(),
    )
    return pair().get(role)


CROP_HELP = ("A photo or a scan of a whole page? Draw the box around the signature alone: only what is inside it is "
             "compared. The box starts on the signature the server finds on the image; the server refuses images "
             "that do not look like one signature (a page, a photo, a frame).")

CROP_STATE_KEY = "crop_state"  # session_state: {name: {"digest", "on", "box", "origin", "starts"}}, see crop_state
LOCATED_KEY = "located"  # session_state: {file digest: POST /api/locate/'s answer (or {"error": message})}
LOCATED_KEEP = 32  # answers kept (one per file uploaded in this session, the oldest dropped first)
CROP_MAX_WIDTH = 900  # the image is drawn at most this wide for cropping (the main column of the wide layout) ...
CROP_MAX_HEIGHT = 1100  # ... and this tall (a portrait page is drawn 733 x 1100)
CROP_STROKE = 3


def crop_state(name: str, data: bytes) -> dict[str, Any]:
    """What the crop step of one uploaded file remembers across reruns and pages, under `name` (`pair_questioned`
    is shared by Verify and Explain, so both send the same box): the file's digest (a new file starts afresh),
    whether the step is on, the last box drawn (`box`, pixels of the image) and the sentence saying where it came
    from, and `starts`: the box each cropper widget started with, by widget key."""
    states = st.session_state.setdefault(CROP_STATE_KEY, {})
    file_digest = digest(data)
    state = states.get(name)
    if state is None or state.get("digest") != file_digest:
        state = states[name] = {"digest": file_digest, "on": False, "box": None, "origin": "", "starts": {}}
    return state


def located(upload: dict[str, Any]) -> dict[str, Any]:
    """POST /api/locate/ for this file, asked once per file (by digest) in a session; a failure is kept as
    {"signatures": [], "error": message} so that it is not asked again on every rerun."""
    cache = st.session_state.setdefault(LOCATED_KEY, {})
    file_digest = digest(upload["data"])
    if file_digest not in cache:
        try:
            with st.spinner("Looking for the signature on the image…"):
                cache[file_digest] = client().locate((upload.get("name") or "image.png", upload["data"]))
        except api.ApiError as exc:
            cache[file_digest] = {"signatures": [], "error": exc.message}
        while len(cache) > LOCATED_KEEP:
            cache.pop(next(iter(cache)))
    return cache[file_digest]


def box_in(value: Any, size: tuple[int, int], scale: tuple[float, float] = (1.0, 1.0)) -> tuple[int, int, int, int] | None:
    """[left, top, right, bottom] from the API (times `scale`), clipped to an image of `size`; None when not a box
    or empty once clipped."""
    try:
        left, top, right, bottom = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    width, height = size
    box = (max(0, int(left * scale[0])), max(0, int(top * scale[1])),
           min(width, round(right * scale[0])), min(height, round(bottom * scale[1])))
    return box if box[0] < box[2] and box[1] < box[3] else None


def located_start(upload: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """The box the crop step starts with on a new file: the best signature POST /api/locate/ found, else the whole
    image, with a sentence saying which."""
    answer = located(upload)
    try:  # the boxes are in the pixels of the image the server read; the same size here, scaled should it differ
        iw, ih = (int(v) for v in answer.get("image_size") or size)
        scale = (size[0] / iw, size[1] / ih)
    except (TypeError, ValueError, ZeroDivisionError):
        scale = (1.0, 1.0)
    for found in answer.get("signatures") or []:
        box = box_in(found.get("box") if isinstance(found, dict) else None, size, scale)
        if box is not None:
            confidence = found.get("confidence")
            sure = f", confidence {float(confidence):.2f}" if isinstance(confidence, (int, float)) else ""
            return {"box": box, "origin": (
                f"The box starts on the signature the server located: {box[2] - box[0]} x {box[3] - box[1]} pixels "
                f"at ({box[0]}, {box[1]}){sure}. Move or resize it if it misses part of the signature.")}
    why = (f"The server could not look for it ({md_text(answer['error'])})" if answer.get("error")
           else "No signature was located on this image")
    note = ""  # the API's note: how often its locator misses a signature
    if not answer.get("error") and isinstance(answer.get("note"), str):
        note = " " + md_text(answer["note"])
    return {"box": (0, 0, size[0], size[1]),
            "origin": f"{why}, so the box starts around the whole image: draw it around the signature.{note}"}


@st.cache_data(max_entries=8, show_spinner=False)
def crop_image(data: bytes) -> tuple[Image.Image, tuple[int, int]] | None:
    """The image to draw the box on and the size of the uploaded image, as the server reads it (EXIF orientation
    applied: the server's boxes and crops are in those pixels): RGB, at most CROP_MAX_WIDTH x CROP_MAX_HEIGHT; None
    when unreadable. Cached: every drag reruns the script, and a large scan is not decoded again each time."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            img.load()
            image = ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    size = image.size
    scale = min(CROP_MAX_WIDTH / size[0], CROP_MAX_HEIGHT / size[1], 1.0)
    if scale < 1.0:
        image = image.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))),
                             Image.Resampling.LANCZOS)
    return image, size


def crop_switch(upload: dict[str, Any], key: str, state_name: str, label: str = "Crop to the signature") -> bool:
    """The toggle that switches the crop step on (widget `<key>_crop_on`), remembered in the file's crop state, so
    that it stays on when going from Verify to Explain and back."""
    state = crop_state(state_name, upload["data"])
    toggle_key = f"{key}_crop_on"
    if toggle_key not in st.session_state:  # a page entered again: its widgets start from the crop state
        st.session_state[toggle_key] = bool(state["on"])
    state["on"] = st.toggle(label, key=toggle_key, help=CROP_HELP)
    return bool(state["on"])


def crop_box_ui(upload: dict[str, Any], key: str, state_name: str) -> tuple[int, int, int, int] | None:
    """The crop step's box drawn on the image (streamlit-cropper) -> (left, top, right, bottom) in pixels of the
    uploaded image, sent to the API, which crops before judging; None when the file cannot be read.

    The box starts on the signature the server located (POST /api/locate/, once per file), on a suggested crop the
    clerk accepted, or where it was last drawn (on the other of Verify and Explain); else around the whole image.

    The widget key and its arguments (the image drawn, `default_coords` = the starting box) depend only on the file
    and the starting box: streamlit-cropper 0.3.1 resets its box whenever its arguments or the frame's width change,
    so a dragged box stays where it was dropped, still selected. `realtime_update=True` sends every box the clerk
    sees. The image is drawn at up to CROP_MAX_WIDTH x CROP_MAX_HEIGHT (`should_resize_image=False`: resized here, so
    a portrait page is large enough to adjust the box), and the box is scaled both ways."""
    readable = crop_image(upload["data"])
    if readable is None:
        st.info("No preview of this file to crop on: it is sent whole.")
        return None
    shown, size = readable
    state = crop_state(state_name, upload["data"])
    entry = state["starts"].get(key)
    if entry is None:  # this widget is new: start where the box was last left (the other page), else located
        entry = ({"box": tuple(state["box"]), "origin": state["origin"] or "The box starts where it was last drawn."}
                 if state["box"] is not None else located_start(upload, size))
    state["starts"] = {key: entry}  # another page's cropper starts afresh from this page's box
    sx, sy = shown.width / size[0], shown.height / size[1]
    left, top, right, bottom = entry["box"]
    # default_coords are (left, right, top, bottom) in the pixels of the image drawn
    # (the stroke is drawn outside the box's width: the box drawn ends where the located one does)
    shown_left, shown_top = round(left * sx), round(top * sy)
    default = (shown_left, max(shown_left + 1, round(right * sx) - CROP_STROKE),
               shown_top, max(shown_top + 1, round(bottom * sy) - CROP_STROKE))
    from streamlit_cropper import st_cropper  # only the crop step draws a box on the image

    rect = st_cropper(shown, realtime_update=True, default_coords=default, should_resize_image=False,
                      box_color=GENUINE_COLOUR, stroke_width=CROP_STROKE, return_type="box",
                      key=f"{key}_cropper_{state['digest']}_{digest(str(entry['box']).encode())}")
    drawn = (int(rect["left"]), int(rect["top"]), int(rect["width"]), int(rect["height"]))
    if drawn == (default[0], default[2], default[1] - default[0], default[3] - default[2]):
        crop = tuple(entry["box"])  # not moved (yet): exactly the box it started with
        state["origin"] = entry["origin"]
    else:
        crop = (max(0, int(float(rect["left"]) / sx)), max(0, int(float(rect["top"]) / sy)),
                min(size[0], math.ceil((float(rect["left"]) + float(rect["width"])) / sx)),
                min(size[1], math.ceil((float(rect["top"]) + float(rect["height"])) / sy)))
        crop = (crop[0], crop[1], max(crop[2], crop[0] + 1), max(crop[3], crop[1] + 1))
        state["origin"] = "The box starts where it was last drawn."
    state["box"] = crop
    st.caption(f"{entry['origin']} Only the box is compared: {crop[2] - crop[0]} x {crop[3] - crop[1]} pixels.")
    return crop  # type: ignore[return-value]


def crop_ui(upload: dict[str, Any], key: str, state_name: str | None = None,
            label: str = "Crop to the signature") -> tuple[int, int, int, int] | None:
    """The crop step in one place (the switch, then the box when on): the box in pixels of the uploaded image, or
    None when off or unreadable."""
    name = state_name or key
    return crop_box_ui(upload, key, name) if crop_switch(upload, key, name, label) else None


# --------------------------------------------------------------------------------------------
# a page refused by the API: offer its suggested crop

SUGGESTED_ORIGIN = "The box starts on the crop the server suggested{sure}: check it, then send the image again."


def suggested_crop(exc: api.ApiError) -> dict[str, Any] | None:
    """The first of a 422 `not_a_signature`'s `details.suggested_crops` with the field the refusal names:
    {"field", "box", "confidence"}; None for any other error or when the server suggested nothing."""
    if exc.code != "not_a_signature":
        return None
    crops = exc.details.get("suggested_crops") or []
    first = crops[0] if isinstance(crops, list) and crops and isinstance(crops[0], dict) else {}
    box = box_in(first.get("box"), (10**9, 10**9))
    if box is None:
        return None
    return {"field": str(exc.details.get("field") or ""), "box": box, "confidence": first.get("confidence")}


def remember_suggestion(store_key: str, request_key: Any, exc: api.ApiError) -> None:
    """Keep the refusal's suggested crop (or forget an older one) for `suggestion_ui`, for these very files."""
    offer = suggested_crop(exc)
    if offer is None:
        st.session_state.pop(store_key, None)
    else:
        st.session_state[store_key] = {"request": request_key, **offer}


def accept_suggestion(store_key: str, toggle_key: str, state_name: str, data: bytes) -> None:
    """on_click of "Use the suggested crop": the crop step switched on with the suggested box."""
    offer = st.session_state.pop(store_key, None)
    if not offer:
        return
    confidence = offer.get("confidence")
    sure = f" (confidence {float(confidence):.2f})" if isinstance(confidence, (int, float)) else ""
    state = crop_state(state_name, data)
    state.update(on=True, box=tuple(offer["box"]), origin=SUGGESTED_ORIGIN.format(sure=sure), starts={})
    st.session_state[toggle_key] = True


def suggestion_ui(store_key: str, request_key: Any, targets: dict[str, tuple[str, str, bytes, str]]) -> None:
    """After a 422 `not_a_signature` with suggested crops: a button that switches the crop step of the refused
    file on with the first suggested box. `targets`: {the API's field name: (toggle key, crop state name, file
    bytes, words for the file)}; shown only while the files and crops are the ones refused."""
    offer = st.session_state.get(store_key)
    if not offer or offer.get("request") != request_key or offer.get("field") not in targets:
        return
    toggle_key, state_name, data, words = targets[offer["field"]]
    left, top, right, bottom = offer["box"]
    st.info(f"The server found what looks like a signature on {words}: {right - left} x {bottom - top} pixels at "
            f"({left}, {top}). Use it as the crop, check the box, then send again.", icon=":material/crop:")
    st.button("Use the suggested crop", key=f"{store_key}_button", icon=":material/crop:", on_click=accept_suggestion,
              args=(store_key, toggle_key, state_name, data))


def auto_crops_ui(result: dict[str, Any]) -> None:
    """An answer given with `auto_crop=true` on a page: which box the server judged, with its thumbnail."""
    for used in result.get("auto_crops") or []:
        if not isinstance(used, dict):
            continue
        box = used.get("box") or []
        size = f" ({box[2] - box[0]} x {box[3] - box[1]} pixels at ({box[0]}, {box[1]}))" if (
            isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)) else ""
        field = md_text(str(used.get("field") or "image"))
        st.info(f"The signature was found for you on the {field} image: this box was used{size}.",
                icon=":material/crop:")
        thumbnail = api.decode_data_url(used.get("thumbnail"))
        if thumbnail:
            show_image(thumbnail, f"The box judged ({used.get('field') or 'image'})", width=260,
                       alt="The part of the uploaded page the server judged as the signature")


def pair_uploaders(
    key_prefix: str, labels: tuple[str, str], *, width: int, subheaders: tuple[str, str] | None = None,
    helps: tuple[str | None, str | None] = (None, None),
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Reference (left) and questioned (right) uploaders with a preview of each file and the crop switch; shared by
    Verify and Explain. The crop boxes are drawn below the two columns, across the page (large enough to adjust),
    and kept under `pair_<role>` so that Verify and Explain send the same box."""
    uploads = []
    for column, role, title, label, help_text, subheader in zip(
        st.columns(2), ("reference", "questioned"), ("Reference", "Questioned"), labels, helps, subheaders or (None, None)
    ):
        with column:
            if subheader:
                st.subheader(subheader)
            upload = pair_uploader(role, label, key_prefix, help=help_text)
            if upload:
                upload["crop_on"] = crop_switch(upload, f"{key_prefix}_{role}", f"pair_{role}")
                if not upload["crop_on"]:
                    show_image(upload["data"], f"{title} · {upload['name']}", width=width)
            uploads.append(upload)
    for role, upload in zip(("reference", "questioned"), uploads):
        if upload:
            upload["crop"] = None
            if upload.get("crop_on"):
                st.markdown(f"**Crop the {role} signature** · {md_text(upload['name'])}")
                upload["crop"] = crop_box_ui(upload, f"{key_prefix}_{role}", f"pair_{role}")
    return uploads[0], uploads[1]


@dataclass(frozen=True)
class PairRequest:
    """What differs between the pages that send a reference and a questioned signature to POST /api/verify/ (Verify,
    Explain); everything else is `pair_request_ui`. Widget keys start with `key` (`<key>_reference`,
    `<key>_button`, ...) and the answer is kept in session_state under `<key>_result`."""

    key: str
    labels: tuple[str, str]
    button: str
    icon: str
    waiting: str  # shown until both files are there
    spinner: str
    failure: str
    explain: bool = False
    width: int = 260
    subheaders: tuple[str, str] | None = None
    helps: tuple[str | None, str | None] = (None, None)


def pair_request_ui(request: PairRequest) -> dict[str, Any] | None:
    """The one upload-and-request flow: the two uploaders with their crop step, the button, the request with both
    crop boxes, and the answer kept for these very files, crops and options (a new file or box hides the old answer).
    Returns the answer to show, or None."""
    reference, questioned = pair_uploaders(request.key, request.labels, width=request.width,
                                           subheaders=request.subheaders, helps=request.helps)
    ready = bool(reference and questioned)
    if not ready:
        st.info(request.waiting)
    clicked = st.button(request.button, type="primary", disabled=not ready, key=f"{request.key}_button",
                        icon=request.icon)
    if not ready:
        return None
    result_key = f"{request.key}_result"
    key = digest(reference["data"], questioned["data"], str(reference.get("crop")).encode(),
                 str(questioned.get("crop")).encode(), str(request.explain).encode())
    suggestion_key = f"{request.key}_suggestion"
    if clicked:
        with st.spinner(request.spinner), api_errors(request.failure):
            try:
                result = client().verify(
                    (reference["name"], reference["data"]), (questioned["name"], questioned["data"]), previews=True,
                    explain=request.explain, reference_crop=reference.get("crop"),
                    questioned_crop=questioned.get("crop"),
                )
            except api.ApiError as exc:
                remember_suggestion(suggestion_key, key, exc)
                raise
            st.session_state.pop(suggestion_key, None)
            st.session_state[result_key] = {"key": key, "result": result}
    suggestion_ui(suggestion_key, key, {
        role: (f"{request.key}_{role}_crop_on", f"pair_{role}", upload["data"], f"the {role} image")
        for role, upload in (("reference", reference), ("questioned", questioned))})
    stored = st.session_state.get(result_key)
    return stored["result"] if stored and stored["key"] == key else None


# --------------------------------------------------------------------------------------------
# result display


DECISION_STYLE = {  # title, colour, background
    "genuine": ("✔ GENUINE", GENUINE_COLOUR, GENUINE_BG),
    "inconclusive": ("? INCONCLUSIVE", INCONCLUSIVE_COLOUR, INCONCLUSIVE_BG),
    "forged": ("✘ FORGED", FORGED_COLOUR, FORGED_BG),
}


def decision_of(result: dict[str, Any]) -> str:
    """The answer's `decision`; an answer without a known one is shown as inconclusive, never as genuine."""
    decision = result.get("decision")
    return str(decision) if decision in DECISION_STYLE else "inconclusive"


def in_100(share: float) -> str:
    """0.034 -> '3 in 100'; never '0 in 100' for a rate that was measured above zero."""
    n = round(100 * share)
    if n == 0 and share > 0:
        return "fewer than 1 in 100"
    return f"{n} in 100"


COPY_FLAG = "identical_to_reference"
PAGE_FLAG = "cut_from_a_page"  # the API's `flags`: a forged score on a signature cut from a page, answered inconclusive


def decision_text(decision: str, rates: dict[str, Any] | None, subject: str = "the reference",
                  flags: list[str] | None = None) -> str:
    """What the decision means, in words that claim no more than the rates measured at this score."""
    if COPY_FLAG in (flags or []):
        return (f"The questioned image is a copy of {subject}, not a new signature: a hand never repeats itself "
                "exactly. It may be a photocopy, a second scan of the same sheet or a replayed image: ask for the "
                "original document.")
    if PAGE_FLAG in (flags or []):
        return ("The signature was cut from a page and scored as a forgery would. Genuine signatures cut from a page "
                "score like this far more often than clean scans do, so the model does not call it forged: compare "
                "a clean scan of the signature, or refer it to a specialist.")
    rates = rates or {}
    low, high = rates.get("forgeries_scoring_this_low"), rates.get("genuine_scoring_this_high")
    if decision == "genuine":
        text = f"The questioned signature is consistent with {subject}."
        if low is not None:
            text += (f" On writers the model never saw, {in_100(low)} skilled forgeries scored this close: "
                     "a skilled forgery can still pass, so check the document's other evidence.")
        return text
    if decision == "forged":
        text = f"The questioned signature differs from {subject} more than genuine signatures usually do: treat it as a possible forgery."
        if high is not None:
            text += f" On writers the model never saw, {in_100(high)} genuine signatures differed this much."
        return text
    text = "The model cannot decide at this score: refer the signature to a specialist, or compare with more references."
    if low is not None and high is not None:
        text += (f" On writers the model never saw, {in_100(low)} skilled forgeries scored this close and "
                 f"{in_100(high)} genuine signatures differed more.")
    return text


def decision_html(decision: str, rates: dict[str, Any] | None = None, subject: str = "the reference",
                  flags: list[str] | None = None) -> str:
    """The decision box as HTML (rendered with unsafe_allow_html): the title and colours are this module's own, every
    text is html.escape'd, so nothing the API or a user sent (decision, subject, rates, flags) is markup."""
    title, colour, bg = DECISION_STYLE.get(decision, DECISION_STYLE["inconclusive"])
    if COPY_FLAG in (flags or []):
        title = "⚠ COPY OF THE REFERENCE"
    return (
        f'<div style="border:3px solid {colour};background:{bg};border-radius:12px;padding:14px 20px;margin:6px 0 12px 0">'
        f'<div style="color:{colour};font-size:2.4rem;font-weight:800;letter-spacing:0.04em;line-height:1.2">{html.escape(title)}</div>'
        f'<div style="color:#222;font-size:1.05rem;margin-top:4px">{html.escape(decision_text(decision, rates, subject, flags))}</div></div>'
    )


def decision_cuts(result: dict[str, Any]) -> tuple[float, float] | None:
    """The cuts the API decided with, as its answer or case record carries them: `genuine_below` and `forged_above`
    in `decision_rates` (an answer), in `details.decision_rates` or beside the other fields (a case record); an answer
    from a card without cuts decided at its `threshold` alone (one cut); None when it carries neither. The interface
    never decides a zone itself: these only place the marks on the scale and are shown as the answer's cuts."""
    details = result.get("details") if isinstance(result.get("details"), dict) else {}
    for source in (result.get("decision_rates"), details.get("decision_rates"), result):
        if isinstance(source, dict) and source.get("genuine_below") is not None and source.get("forged_above") is not None:
            try:
                return float(source["genuine_below"]), float(source["forged_above"])
            except (TypeError, ValueError):
                return None
    try:
        return (float(result["threshold"]),) * 2 if result.get("threshold") is not None else None
    except (TypeError, ValueError):
        return None


ZONE_WORDS = {
    "genuine": "in the GENUINE zone (at or below {g:.3f})",
    "inconclusive": "in the INCONCLUSIVE zone ({g:.3f} to {f:.3f})",
    "forged": "in the FORGED zone (above {f:.3f})",
}


def distance_scale_html(score: float, decision: str, genuine_below: float, forged_above: float | None = None) -> str:
    """A horizontal bar: green (decided genuine) up to `genuine_below`, amber (inconclusive) up to `forged_above`,
    red (decided forged) beyond, a dot at the score, with the cuts' numbers under it so it reads without a legend.
    The zone named is the API's `decision`, never one worked out here; the cuts only draw the bar. One cut
    (`forged_above` missing or equal) draws the two-way scale of an older model card. Rendered with
    unsafe_allow_html: every value is made a float first (a string from the API raises instead of becoming markup),
    and a decision the interface does not know is shown as inconclusive."""
    distance, genuine_below = float(score), float(genuine_below)
    forged_above = genuine_below if forged_above is None else max(float(forged_above), genuine_below)
    top = max(1.5 * forged_above, 2 * genuine_below, distance * 1.15, 1e-6)
    g, f = 100 * genuine_below / top, 100 * forged_above / top
    d = min(100.0, max(0.0, 100 * distance / top))
    decision = decision if isinstance(decision, str) and decision in DECISION_STYLE else "inconclusive"
    dot = DECISION_STYLE[decision][1]
    zone = ZONE_WORDS[decision].format(g=genuine_below, f=forged_above)
    gradient = (f"{GENUINE_BG} 0%,#bfe5c9 {g:.1f}%,{INCONCLUSIVE_BG} {g:.1f}%,#f6dc9a {f:.1f}%,#f3c1bc {f:.1f}%,"
                f"{FORGED_BG} 100%")
    ticks = [(g, genuine_below, "genuine cut")] + ([(f, forged_above, "forged cut")] if f > g else [])
    markers = "".join(
        f'<div title="{label}" style="position:absolute;left:calc({x:.1f}% - 2px);top:-7px;height:36px;width:4px;'
        f'background:#222;border-radius:2px"></div>' for x, _, label in ticks)
    labels = "".join(
        f'<span style="position:absolute;left:{x:.1f}%;transform:translateX(-50%);text-align:center;font-weight:700">'
        f"{value:.3f}<br>{label}</span>" for x, value, label in ticks)
    middle = (f'<span style="position:absolute;left:{(g + f) / 2:.1f}%;transform:translateX(-50%);top:2px;font-size:0.8rem;'
              f'font-weight:700;color:{INCONCLUSIVE_COLOUR}">?</span>' if f - g > 8 else "")
    return (
        '<div style="margin:8px 0 4px 0;font-size:1rem;font-weight:600">'
        f"Score: {distance:.3f} — {zone}</div>"
        '<div style="position:relative;height:24px;margin-top:26px;border-radius:12px;border:1px solid #bbb;'
        f'background:linear-gradient(to right,{gradient})">'
        f'<div style="position:absolute;left:{d:.1f}%;top:-24px;transform:translateX(-50%);white-space:nowrap;'
        f'font-size:0.85rem;font-weight:700;color:{dot}">this score ▼</div>'
        f"{markers}"
        f'<div title="score {distance:.3f}" style="position:absolute;left:calc({d:.1f}% - 11px);top:0px;width:22px;height:22px;'
        f'border-radius:50%;background:{dot};border:3px solid white;box-shadow:0 0 3px #000"></div>'
        f'<span style="position:absolute;left:12px;top:2px;font-size:0.8rem;font-weight:700;color:{GENUINE_COLOUR}">GENUINE</span>'
        f"{middle}"
        f'<span style="position:absolute;right:12px;top:2px;font-size:0.8rem;font-weight:700;color:{FORGED_COLOUR}">FORGED</span>'
        "</div>"
        '<div style="position:relative;height:3.6em;font-size:0.85rem;color:#444">'
        '<span style="position:absolute;left:0">0<br>◀ more alike</span>'
        f"{labels}"
        f'<span style="position:absolute;right:0;text-align:right">{top:.3f}<br>less alike ▶</span></div>'
    )


def score_of(result: dict[str, Any]) -> float:
    """The number the decision judged: the answer's (or case record's) `score`."""
    return float(result.get("score") or 0.0)


def score_method_of(result: dict[str, Any]) -> str:
    """How the score was formed: "pairwise", "normalized" or "mean" (the answer's `score_method`)."""
    return str(result.get("score_method") or "pairwise")


SCORE_HELP = {  # what the score is, by the API's `score_method`
    "pair": "How different the questioned signature looks to the model from the reference (0 = identical).",
    "normalized": "The questioned signature's mean distance to the references divided by how far they lie from "
                  "each other (0 = identical): a variable signer is allowed more distance.",
    "mean": "The questioned signature's mean distance to the references (0 = identical).",
    "pairwise": "The distance to the single reference (0 = identical).",
}


def result_ui(result: dict[str, Any], subject: str = "the reference") -> None:
    """The decision in its colour and words, the score on the band's scale, the cuts, model and time. A copy of the
    reference is judged by no zone: its score says only that the images are the same."""
    decision = decision_of(result)
    score = score_of(result)
    rates = result.get("decision_rates") or {}
    cuts = decision_cuts(result)
    flags = list(result.get("flags") or [])
    st.markdown(decision_html(decision, rates, subject, flags), unsafe_allow_html=True)
    auto_crops_ui(result)
    if COPY_FLAG not in flags and PAGE_FLAG not in flags and cuts is not None:  # a flagged answer names no zone
        st.markdown(distance_scale_html(score, decision, *cuts), unsafe_allow_html=True)
    for warning in result.get("warnings") or []:
        st.warning(f"{md_text(str(warning.get('field', '')).capitalize())}: {md_text(warning.get('message', ''))}", icon=":material/crop:")
    c1, c2 = st.columns(2)
    c1.metric("Score", f"{score:.3f}", help=SCORE_HELP.get(str(result.get("score_method")), SCORE_HELP["pair"])
              + (" A copy is never judged by its score." if COPY_FLAG in flags else ""))
    c2.metric("Decision cuts", f"{cuts[0]:.3f} / {cuts[1]:.3f}" if cuts else "not given",
              help="At or below the first: decided genuine (at most 2 in 100 skilled forgeries of validation writers "
              "score that low). Above the second: decided forged (at most 2 in 100 of their genuine signatures score "
              "that high). In between: inconclusive.")
    st.caption(
        f"Model {md_text(result.get('model_version', 'unknown'))} · answered in "
        f"{float(result.get('elapsed_ms', 0.0)):.0f} ms"
    )


def metric_rows(metrics: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten a model card's nested `metrics` into table rows: every dict holding eer/auc/... is a row."""
    keys = ("eer", "auc", "accuracy", "far", "frr", "threshold", "n_genuine", "n_forged", "k")
    rows: list[dict[str, Any]] = []
    if not isinstance(metrics, dict):
        return rows
    if any(k in metrics and isinstance(metrics[k], (int, float)) for k in ("eer", "auc", "accuracy", "far", "frr")):
        row: dict[str, Any] = {"evaluation": prefix or "overall"}
        for k in keys:
            if isinstance(metrics.get(k), (int, float)):
                row[k] = metrics[k]
        rows.append(row)
    for name, value in metrics.items():
        if isinstance(value, dict):
            rows.extend(metric_rows(value, f"{prefix} / {name}" if prefix else str(name)))
    return rows


# --------------------------------------------------------------------------------------------
# one-shot messages that survive an st.rerun()

FLASH_KEY = "flash"


def flash(message: str, kind: str = "success") -> None:
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop(FLASH_KEY, []):
        getattr(st, kind, st.info)(message)
