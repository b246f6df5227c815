"""All HTTP between the interface and the signature-verification API (contract: docs/api.md).

Pages never call `requests` themselves: they call one function per endpoint here and catch the
typed errors below, so the pages stay declarative and tests can run them against any backend URL.

    client = SigverClient()                       # base URL from SIGVER_API_URL
    result = client.verify(ref_bytes, q_bytes, previews=True)

Errors (all subclasses of `ApiError`, each with `status`, `code`, `message`, `details`):
    BackendUnavailable  connection refused, DNS failure, timeout, 502/503/504 (e.g. model_unavailable)
    AuthError           401/403: missing, invalid, expired or signed-out token, wrong password
    Throttled           429; `retry_after` in seconds (from the Retry-After header) or None
    NotFound            404
    BadRequest          any other 4xx (400, 405, 409, 413, 415, ...) with the backend's message
    ServerError         any other 5xx, or a response that is not the JSON the contract promises
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote, urlsplit

import requests

DEFAULT_API_URL = "http://127.0.0.1:8000"
CONNECT_TIMEOUT_S = 3.05
READ_TIMEOUT_S = 30.0
SLOW_READ_TIMEOUT_S = 180.0  # explanations (occlusion maps) and batches of pairs
HEALTH_TIMEOUT_S = 3.0

# File types the upload widgets accept; the backend decides whether the content really is an image.
IMAGE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp"]
_MIME_BY_EXT = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
}

# What one uploaded file is: raw bytes, or (filename, bytes), or (filename, bytes, content type).
Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels of the uploaded image
FileLike = bytes | tuple[str, bytes] | tuple[str, bytes, str]


# --------------------------------------------------------------------------------------------
# errors


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None, code: str = "error", details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}

    def __str__(self) -> str:  # what a page may show as is
        return self.message


class BackendUnavailable(ApiError):
    """The API could not be reached, did not answer in time, or says it cannot serve now."""


class AuthError(ApiError):
    """401/403: not signed in, token invalid or expired, wrong credentials, not allowed."""


class Throttled(ApiError):
    """429; `retry_after` is the Retry-After header in seconds, or None."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class BadRequest(ApiError):
    """A 4xx the user can fix: invalid or blank image, file too large, missing field, ..."""


class NotFound(ApiError):
    """404: the object does not exist or belongs to another user."""


class ServerError(ApiError):
    """An unexpected 5xx, or an answer that is not what the contract promises."""


def api_url() -> str:
    """The backend base URL, read from SIGVER_API_URL at call time (so tests can point it anywhere)."""
    return (os.environ.get("SIGVER_API_URL") or DEFAULT_API_URL).rstrip("/")


def decode_data_url(data_url: str | None) -> bytes | None:
    """`data:image/png;base64,...` (as in previews and explanations) -> the image bytes, or None."""
    if not data_url or not isinstance(data_url, str):
        return None
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") and "," in data_url else data_url
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: we do not guess
        return None


def _error_from_response(resp: requests.Response) -> ApiError:
    status = resp.status_code
    code, message, details = "error", "", {}
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or "")
            details = err.get("details") if isinstance(err.get("details"), dict) else {}
        elif isinstance(body.get("detail"), str):  # a plain DRF error, should the handler miss one
            message = body["detail"]
    if not message:
        message = f"The server answered {status} {resp.reason or ''}".strip() + "."
    kwargs = {"message": message, "status": status, "code": code, "details": details}
    if status in (401, 403):
        return AuthError(**kwargs)
    if status == 404:
        return NotFound(**kwargs)
    if status == 429:
        return Throttled(**kwargs, retry_after=_retry_after(resp.headers.get("Retry-After")))
    if 400 <= status < 500:
        return BadRequest(**kwargs)
    if status in (502, 503, 504):
        return BackendUnavailable(**kwargs)
    return ServerError(**kwargs)


def _is_json_object(resp: requests.Response) -> bool:
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" not in body


def _file_tuple(file: FileLike, default_name: str) -> tuple[str, bytes, str]:
    if isinstance(file, (bytes, bytearray)):
        name, data, mime = default_name, bytes(file), None
    elif len(file) == 3:
        name, data, mime = file  # type: ignore[misc]
    else:
        name, data = file  # type: ignore[misc]
        mime = None
    if not mime:
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        mime = _MIME_BY_EXT.get(ext, "application/octet-stream")
    return name, bytes(data), mime


def _flag(value: bool) -> str:
    return "true" if value else "false"


def crop_value(box: Box | None) -> str:
    """A crop box as the API takes it (`crop`, `reference_crop`, ...): "left,top,right,bottom"; "" for none."""
    return "" if box is None else ",".join(str(int(v)) for v in box)


class SigverClient:
    """One instance per page run is cheap; `token` is sent as `Authorization: Token <token>`."""

    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = READ_TIMEOUT_S):
        self.base_url = (base_url or api_url()).rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session = requests.Session()

    # ---------------------------------------------------------------- plumbing

    def url(self, path: str) -> str:
        """Absolute URL for an API path (`/api/...`) or a URL from a response.

        Absolute URLs from responses keep only their path and query: the backend may know itself under
        another host name, and the token must only ever go to `base_url`.
        """
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        files: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        auth: bool = False,
        expect_json: bool = True,
        answer_statuses: tuple[int, ...] = (),
    ) -> Any:
        headers = {"Accept": "application/json" if expect_json else "*/*"}
        if auth or self.token:
            if not self.token:
                raise AuthError("Please sign in first.", status=401, code="not_authenticated")
            headers["Authorization"] = f"Token {self.token}"
        url = self.url(path)
        try:
            resp = self._session.request(
                method, url, json=json, data=data, files=files, headers=headers,
                params={k: v for k, v in (params or {}).items() if v is not None},
                timeout=(CONNECT_TIMEOUT_S, timeout or self.timeout),
            )
        except requests.Timeout as exc:
            raise BackendUnavailable(
                f"The verification server at {self.base_url} did not answer in time. Please try again.",
                code="timeout",
            ) from exc
        except requests.RequestException as exc:  # refused, DNS, reset, invalid URL
            raise BackendUnavailable(
                f"The verification server at {self.base_url} cannot be reached. "
                "Check that it is running, then try again.",
                code="unreachable",
            ) from exc
        if resp.status_code >= 400 and not (resp.status_code in answer_statuses and _is_json_object(resp)):
            raise _error_from_response(resp)
        if not expect_json:
            return resp.content
        if resp.status_code == 204 or not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError as exc:
            raise ServerError(
                f"The server answered {method} {path} with something that is not JSON.",
                status=resp.status_code, code="invalid_response",
            ) from exc

    # ---------------------------------------------------------------- health and model

    def index(self) -> dict[str, Any]:
        """GET /api/ -> {name, version, links, limits: {max_upload_bytes, max_request_bytes, ...}}."""
        return self._request("GET", "/api/")

    def health(self) -> dict[str, Any]:
        """GET /api/health/ -> {status, model_loaded, model_version, database}.

        A degraded backend answers 503 with the same body (`status: degraded`, `model_loaded: false`):
        that is an answer, returned as such, not an error."""
        return self._request("GET", "/api/health/", timeout=HEALTH_TIMEOUT_S, answer_statuses=(503,))

    def model_card(self) -> dict[str, Any]:
        """GET /api/model/ -> the model card."""
        return self._request("GET", "/api/model/")

    def model_plot(self, name: str) -> bytes:
        """GET /api/model/plots/<name>.png -> PNG bytes (NotFound when the plot is not shipped)."""
        return self._request("GET", f"/api/model/plots/{quote(name)}.png", expect_json=False)

    # ---------------------------------------------------------------- verification

    def verify(
        self, reference: FileLike, questioned: FileLike, *, previews: bool = False, explain: bool = False,
        reference_crop: Box | None = None, questioned_crop: Box | None = None, auto_crop: bool = False,
    ) -> dict[str, Any]:
        """POST /api/verify/ -> {decision, score, score_method, threshold, decision_rates, flags, warnings,
        auto_crops, model_version, elapsed_ms, ...}; a crop box (left, top, right, bottom) is judged alone. With
        `auto_crop`, an upload refused as a page is judged on the best box the server locates on it (`auto_crops`
        says which); without it such an upload is a 422 `not_a_signature` with `details.suggested_crops`."""
        files = {
            "reference": _file_tuple(reference, "reference.png"),
            "questioned": _file_tuple(questioned, "questioned.png"),
        }
        data = {"previews": _flag(previews), "explain": _flag(explain)}
        if auto_crop:
            data["auto_crop"] = "true"
        for name, box in (("reference_crop", reference_crop), ("questioned_crop", questioned_crop)):
            if box is not None:
                data[name] = crop_value(box)
        timeout = SLOW_READ_TIMEOUT_S if explain else None
        return self._request("POST", "/api/verify/", data=data, files=files, timeout=timeout)

    def locate(self, image: FileLike) -> dict[str, Any]:
        """POST /api/locate/ multipart `image` -> {signatures: [{box: [left, top, right, bottom], crop, confidence},
        ...] best first (may be empty: the locator misses signatures, `note` says so), count, image_size: [width,
        height], note, elapsed_ms}."""
        return self._request("POST", "/api/locate/", files={"image": _file_tuple(image, "page.png")})

    # ---------------------------------------------------------------- datasets

    def datasets(self) -> list[dict[str, Any]]:
        """GET /api/datasets/ -> the list under `datasets`."""
        return list(self._request("GET", "/api/datasets/").get("datasets", []))

    def dataset(self, name: str) -> dict[str, Any]:
        """GET /api/datasets/<name>/ -> summary plus `writer_ids` and `split_of_writer`."""
        return self._request("GET", f"/api/datasets/{quote(name)}/")

    def writer(self, dataset: str, writer: str) -> dict[str, Any]:
        """GET /api/datasets/<name>/writers/<writer>/ -> {writer, split, genuine: [...], forged: [...]}."""
        return self._request("GET", f"/api/datasets/{quote(dataset)}/writers/{quote(str(writer))}/")

    def dataset_image(self, url_or_path: str, dataset: str | None = None) -> bytes:
        """An image from a dataset: its `url` from a response, or (`path`, `dataset`)."""
        if dataset is not None and not url_or_path.startswith(("/", "http://", "https://")):
            url_or_path = f"/api/datasets/{quote(dataset)}/images/{quote(url_or_path)}"
        return self._request("GET", url_or_path, expect_json=False)

    def pairs(
        self, dataset: str, *, split: str | None = None, kind: str = "genuine", limit: int = 10, seed: int | None = None
    ) -> list[dict[str, Any]]:
        """GET /api/datasets/<name>/pairs/?split=&kind=&limit=&seed= -> the list under `pairs`."""
        params = {"split": split, "kind": kind, "limit": limit, "seed": seed}
        return list(self._request("GET", f"/api/datasets/{quote(dataset)}/pairs/", params=params).get("pairs", []))

    def verify_pairs(
        self, dataset: str, *, split: str | None = None, kind: str = "mixed", limit: int = 20, seed: int = 0
    ) -> dict[str, Any]:
        """POST /api/datasets/<name>/pairs/verify/ -> {results, accuracy, n, threshold, model_version}."""
        body: dict[str, Any] = {"kind": kind, "limit": int(limit), "seed": int(seed)}
        if split:
            body["split"] = split
        return self._request(
            "POST", f"/api/datasets/{quote(dataset)}/pairs/verify/", json=body, timeout=SLOW_READ_TIMEOUT_S
        )

    # ---------------------------------------------------------------- accounts

    def register(self, username: str, password: str, email: str | None = None) -> dict[str, Any]:
        """POST /api/auth/register/ -> {id, username, token}."""
        body = {"username": username, "password": password}
        if email:
            body["email"] = email
        return self._request("POST", "/api/auth/register/", json=body)

    def login(self, username: str, password: str) -> str:
        """POST /api/auth/token/ -> the token."""
        token = self._request("POST", "/api/auth/token/", json={"username": username, "password": password}).get("token")
        if not token:
            raise ServerError("The server did not return a token.", code="invalid_response")
        return str(token)

    def sign_out(self, *, everywhere: bool = False) -> None:
        """POST /api/auth/sign-out/ (token) -> 204: the token ends on the server (with `everywhere`, every token of
        the account). Forget `token` afterwards whatever happens."""
        self._request("POST", "/api/auth/sign-out/", json={"everywhere": everywhere}, auth=True)

    def change_password(self, current_password: str, new_password: str) -> str:
        """POST /api/auth/password/ (token) -> a new token; every other token of the account has ended (this
        client's `token` is replaced by the new one)."""
        body = {"current_password": current_password, "new_password": new_password}
        token = self._request("POST", "/api/auth/password/", json=body, auth=True).get("token")
        if not token:
            raise ServerError("The server did not return a token.", code="invalid_response")
        self.token = str(token)
        return self.token

    def delete_account(self) -> None:
        """DELETE /api/auth/account/ (token) -> 204."""
        self._request("DELETE", "/api/auth/account/", auth=True)

    # ---------------------------------------------------------------- enrollment (token auth)

    def profiles(self) -> list[dict[str, Any]]:
        """GET /api/profiles/ (follows `next` pages) -> all of the user's profiles."""
        out: list[dict[str, Any]] = []
        page: str | None = "/api/profiles/"
        for _ in range(100):  # a guard against a `next` that loops
            if not page:
                break
            body = self._request("GET", page, auth=True)
            out.extend(body.get("results", []))
            page = body.get("next")
        return out

    def create_profile(self, name: str, external_id: str | None = None) -> dict[str, Any]:
        """POST /api/profiles/ -> 201 profile."""
        body = {"name": name}
        if external_id:
            body["external_id"] = external_id
        return self._request("POST", "/api/profiles/", json=body, auth=True)

    def profile(self, profile_id: int | str) -> dict[str, Any]:
        """GET /api/profiles/<id>/."""
        return self._request("GET", f"/api/profiles/{profile_id}/", auth=True)

    def update_profile(self, profile_id: int | str, **fields: Any) -> dict[str, Any]:
        """PATCH /api/profiles/<id>/."""
        return self._request("PATCH", f"/api/profiles/{profile_id}/", json=fields, auth=True)

    def delete_profile(self, profile_id: int | str) -> None:
        """DELETE /api/profiles/<id>/ -> 204."""
        self._request("DELETE", f"/api/profiles/{profile_id}/", auth=True)

    def references(self, profile_id: int | str) -> list[dict[str, Any]]:
        """GET /api/profiles/<id>/references/ -> the list under `results`."""
        return list(self.reference_listing(profile_id).get("results", []))

    def reference_listing(self, profile_id: int | str) -> dict[str, Any]:
        """GET /api/profiles/<id>/references/ -> {results: [... consistency_score, outlier], guidance: {...}}."""
        return self._request("GET", f"/api/profiles/{profile_id}/references/", auth=True)

    def add_references(self, profile_id: int | str, images: Iterable[FileLike], *,
                       crops: Sequence[Box | None] | None = None, auto_crop: bool = False) -> list[dict[str, Any]]:
        """POST /api/profiles/<id>/references/ multipart `images` (several) -> the created references. `crops`, one
        per image in the same order (None: the image whole), is sent as the `crops` list ("" for no crop) when any
        image has one; `auto_crop` as for `verify`."""
        files = [("images", _file_tuple(img, f"reference_{i}.png")) for i, img in enumerate(images)]
        if not files:
            raise BadRequest("Choose at least one image.", code="missing_field")
        crops = list(crops or [])
        if crops and len(crops) != len(files):
            raise ValueError(f"{len(crops)} crops for {len(files)} images")
        data: list[tuple[str, str]] = [("crops", crop_value(box)) for box in crops] if any(
            box is not None for box in crops) else []
        if auto_crop:
            data.append(("auto_crop", "true"))
        body = self._request("POST", f"/api/profiles/{profile_id}/references/", files=files, data=data or None,
                             auth=True)
        return list(body.get("results", []))

    def reference_image(self, profile_id: int | str, reference_id: int | str, image_url: str | None = None) -> bytes:
        """GET /api/profiles/<id>/references/<ref_id>/image/ (or the reference's `image_url`) -> image bytes."""
        path = image_url or f"/api/profiles/{profile_id}/references/{reference_id}/image/"
        return self._request("GET", path, auth=True, expect_json=False)

    def delete_reference(self, profile_id: int | str, reference_id: int | str) -> None:
        """DELETE /api/profiles/<id>/references/<ref_id>/ -> 204."""
        self._request("DELETE", f"/api/profiles/{profile_id}/references/{reference_id}/", auth=True)

    def verify_profile(self, profile_id: int | str, questioned: FileLike, *, crop: Box | None = None,
                       auto_crop: bool = False) -> dict[str, Any]:
        """POST /api/profiles/<id>/verify/ -> the questioned signature's `score` against all references (how it was
        computed: `score_method`), its decision, and the distance to each reference; `crop` (left, top, right,
        bottom) is judged alone; `auto_crop` as for `verify`."""
        files = {"questioned": _file_tuple(questioned, "questioned.png")}
        data = {}
        if crop is not None:
            data["crop"] = crop_value(crop)
        if auto_crop:
            data["auto_crop"] = "true"
        return self._request("POST", f"/api/profiles/{profile_id}/verify/", files=files, data=data or None,
                             auth=True)

    # ---------------------------------------------------------------- case records (token auth)

    @staticmethod
    def _record_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
        """date_from / date_to (date or "YYYY-MM-DD"), profile, decision, user, kind; empty values left out."""
        out = {}
        for key, value in filters.items():
            if value in (None, "", "all"):
                continue
            out[key] = value.isoformat() if hasattr(value, "isoformat") else value
        return out

    def records(self, *, page: int = 1, page_size: int = 50, **filters: Any) -> dict[str, Any]:
        """GET /api/records/?<filters>&page= -> {count, next, previous, results}: the clerk's case records
        (every clerk's for staff), newest first."""
        params = {**self._record_filters(filters), "page": page, "page_size": page_size}
        return self._request("GET", "/api/records/", params=params, auth=True)

    def record(self, record_id: int | str) -> dict[str, Any]:
        """GET /api/records/<id>/ -> one case record."""
        return self._request("GET", f"/api/records/{record_id}/", auth=True)

    def record_thumbnail(self, record_id: int | str, thumbnail_url: str | None = None) -> bytes:
        """GET /api/records/<id>/thumbnail/ (or the record's `thumbnail_url`) -> the kept questioned image (NotFound
        when the record keeps none)."""
        return self._request("GET", thumbnail_url or f"/api/records/{record_id}/thumbnail/", auth=True,
                             expect_json=False)

    def records_csv(self, **filters: Any) -> bytes:
        """GET /api/records/export/?<filters> -> the matching case records as CSV bytes."""
        return self._request("GET", "/api/records/export/", params=self._record_filters(filters), auth=True,
                             expect_json=False)
