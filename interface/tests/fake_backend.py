"""A tiny in-process HTTP server that speaks the API contract of docs/api.md, for the interface tests.

The page tests run against the real backend (tests/live_backend.py); this one only serves the
failures a real server does not produce on demand (`state.fail_next(...)`), and `make_signature`
draws the test signatures for both.

It is not the backend: its "model" is a pixel-overlap distance between the two images (0 for identical
images, up to 2 for signatures with no ink in common), good enough to give deterministic verdicts.
Its dataset `DEMO` is drawn with PIL in memory. Tests can queue failures with `state.fail_next(...)`.
"""

from __future__ import annotations

import base64
import io
import json
import math
import random
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import Image, ImageChops, ImageDraw, ImageFilter, UnidentifiedImageError

THRESHOLD = 0.81
REFERENCE_THRESHOLD = 3.0  # on the normalized reference score (mean distance / the references' spread)
MODEL_VERSION = "siamese_resnet18@fake0001"
DATASET = "DEMO"
WRITERS = ["1", "2", "3", "4"]
SPLIT_OF_WRITER = {"1": "train", "2": "train", "3": "validation", "4": "test"}
N_GENUINE, N_FORGED = 3, 2


# --------------------------------------------------------------------------------------------
# signatures drawn with PIL (also used by the tests to make their uploads)


def make_signature(seed: int, *, jitter: float = 1.5, variant: int = 0, size: tuple[int, int] = (300, 120)) -> bytes:
    """A PNG of dark strokes on white: the same `seed` gives the same "writer", `variant` a new sample."""
    base = random.Random(seed)
    sample = random.Random(seed * 1000 + variant)
    w, h = size
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    x, y = 15.0, h / 2
    points = [(x, y)]
    for _ in range(14):
        x += base.uniform(10, 22)
        y = h / 2 + base.uniform(-h / 3, h / 3)
        points.append((x + sample.uniform(-jitter, jitter), y + sample.uniform(-jitter, jitter)))
    draw.line(points, fill=20, width=4, joint="curve")
    loops = base.randint(1, 3)
    for _ in range(loops):
        cx, cy, r = base.uniform(40, w - 40), base.uniform(30, h - 30), base.uniform(8, 20)
        cx += sample.uniform(-jitter, jitter)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=30, width=3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _dataset_image(path: str) -> bytes | None:
    m = re.fullmatch(r"(\d+)/(genuine|forged)/\1_(\d+)\.png", path)
    if not m or m.group(1) not in WRITERS:
        return None
    writer, kind, i = int(m.group(1)), m.group(2), int(m.group(3))
    if kind == "genuine" and 1 <= i <= N_GENUINE:
        return make_signature(writer, variant=i)
    if kind == "forged" and 1 <= i <= N_FORGED:  # a forger imitating writer `writer`: different strokes
        return make_signature(100 + writer * 10 + i, variant=i)
    return None


def _paths(writer: str, kind: str) -> list[str]:
    n = N_GENUINE if kind == "genuine" else N_FORGED
    return [f"{writer}/{kind}/{writer}_{i}.png" for i in range(1, n + 1)]


def _image_entry(path: str) -> dict[str, str]:
    return {"path": path, "url": f"/api/datasets/{DATASET}/images/{path}"}


# --------------------------------------------------------------------------------------------
# the fake model


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, raw: bytes | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.raw = status, code, message, headers or {}, raw


def _ink_map(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ApiFailure(415, "invalid_image", "The file is not an image that can be read.") from exc
    ink = ImageChops.invert(img.convert("L"))
    ink = ink.point(lambda v: 255 if v > 60 else 0)
    box = ink.getbbox()
    if box is None:
        raise ApiFailure(400, "blank_image", "The image contains no signature (it looks blank).")
    ink = ink.crop(box)
    canvas = Image.new("L", (220, 150), 0)
    ink.thumbnail((210, 140))
    canvas.paste(ink, ((220 - ink.width) // 2, (150 - ink.height) // 2))
    return canvas


def _png_data_url(img: Image.Image) -> str:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def fake_distance(a: bytes, b: bytes) -> tuple[float, Image.Image, Image.Image]:
    ma, mb = _ink_map(a), _ink_map(b)
    sa = ma.resize((55, 38)).filter(ImageFilter.GaussianBlur(1.2))
    sb = mb.resize((55, 38)).filter(ImageFilter.GaussianBlur(1.2))
    pa, pb = sa.tobytes(), sb.tobytes()
    diff = sum(abs(x - y) for x, y in zip(pa, pb))
    total = sum(pa) + sum(pb)
    return (2.0 * diff / total if total else 0.0), ma, mb


def fake_decision(score: float, threshold: float) -> dict[str, Any]:
    """Like the real API's three-way decision: cuts at 0.8x and 1.2x the threshold, rates falling linearly."""
    low, high = 0.8 * threshold, 1.2 * threshold
    decision = "genuine" if score <= low else "forged" if score > high else "inconclusive"
    far = min(1.0, max(0.0, score / (2 * threshold)))
    return {"decision": decision, "decision_rates": {
        "genuine_below": round(low, 4), "forged_above": round(high, 4), "forgeries_scoring_this_low": round(far ** 2, 4),
        "genuine_scoring_this_high": round((1 - far) ** 2, 4), "measured_on": "validation writers"}}


def verify_result(a: bytes, b: bytes, *, previews: bool = False, explain: bool = False) -> dict[str, Any]:
    d, ma, mb = fake_distance(a, b)
    match = d <= THRESHOLD
    out: dict[str, Any] = {
        "distance": round(d, 4),
        "threshold": THRESHOLD,
        "match": match,
        "verdict": "genuine" if match else "forged",
        **fake_decision(d, THRESHOLD),
        "flags": ["identical_to_reference"] if a == b else [], "warnings": [],
        "similarity": round(1 / (1 + math.exp(8 * (d - THRESHOLD))), 4),
        "model_version": MODEL_VERSION,
        "elapsed_ms": 12.5,
    }
    if previews:
        out["previews"] = {"reference": _png_data_url(ma), "questioned": _png_data_url(mb)}
    if explain:
        heat = ImageChops.difference(ma, mb).filter(ImageFilter.GaussianBlur(6))
        heat = heat.point(lambda v: min(255, v * 4))

        def overlay(ink: Image.Image) -> str:
            return _png_data_url(Image.merge("RGB", (ImageChops.lighter(heat, ink), ink, ink)))

        out["explanation"] = {
            "method": "occlusion",
            "reference": overlay(ma),
            "questioned": overlay(mb),
            "note": "red = regions whose occlusion changes the distance most",
        }
    return out


def plot_png() -> bytes:
    img = Image.new("RGB", (360, 240), "white")
    draw = ImageDraw.Draw(img)
    draw.line([(30, 210), (30, 20)], fill="black", width=2)
    draw.line([(30, 210), (340, 210)], fill="black", width=2)
    draw.line([(30, 210), (60, 60), (120, 35), (340, 25)], fill="blue", width=3)
    draw.text((120, 120), "ROC (fake)", fill="black")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


MODEL_CARD: dict[str, Any] = {
    "name": "siamese_resnet18",
    "version": MODEL_VERSION,
    "created": "2026-01-01T00:00:00+00:00",
    "architecture": {"embedding_dim": 128, "hidden_dim": 256, "normalize": True},
    "preprocessing": {"height": 150, "width": 220},
    "threshold": THRESHOLD,
    "thresholds": {"pairwise": THRESHOLD, "reference_based": REFERENCE_THRESHOLD},
    "reference_score": "normalized",
    "calibration": {"slope": -8.0, "intercept": 6.48},
    "metrics": {
        "validation": {
            "pairwise": {"eer": 0.081, "auc": 0.962, "accuracy": 0.918, "far": 0.085, "frr": 0.079,
                         "threshold": THRESHOLD, "n_genuine": 1200, "n_forged": 1100},
            "reference_based": {"eer": 0.052, "auc": 0.981, "accuracy": 0.95, "far": 0.05, "frr": 0.05, "k": 10},
        },
        "CEDAR_test": {"dataset": "CEDAR", "pairwise": {"eer": 0.07, "auc": 0.97, "accuracy": 0.93, "far": 0.07, "frr": 0.07}},
    },
    "data": {
        "sources": {"CEDAR": {"writers": 55, "train_writers": 35}, "GPDS": {"writers": 150, "train_writers": 110}},
        "protocol": "writer-disjoint splits; thresholds and calibration on validation writers only",
    },
    "training": {"best_epoch": 12, "epochs_run": 16, "config": {"lr": 0.001, "epochs": 16}},
    "weights": {"file": "siamese_resnet18.safetensors", "sha256": "fake0001", "dtype": "float16"},
    "notes": "",
}


# --------------------------------------------------------------------------------------------
# state


@dataclass
class FakeState:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # username -> {id, password}
    tokens: dict[str, str] = field(default_factory=dict)  # token -> username
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)
    references: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[str, ApiFailure]] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    model_loaded: bool = True
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def fail_next(self, path_prefix: str, status: int, code: str = "error", message: str = "",
                  headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        """The next request whose path starts with `path_prefix` gets this error instead of its answer
        (`raw`: a non-JSON body sent as text/html, as a proxy in front of the API would)."""
        self.failures.append((path_prefix, ApiFailure(status, code, message, headers, raw)))

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def add_user(self, username: str, password: str) -> str:
        self.users[username] = {"id": self.new_id(), "password": password}
        token = secrets.token_hex(20)
        self.tokens[token] = username
        return token


# --------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeSigver/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> FakeState:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ---------------------------------------------------------------- plumbing

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _body(self) -> bytes:
        return self._raw

    def _json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self._body() or b"{}")
        except ValueError as exc:
            raise ApiFailure(400, "invalid", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise ApiFailure(400, "invalid", "A JSON object is expected.")
        return body

    def _multipart(self) -> tuple[dict[str, str], dict[str, list[bytes]]]:
        ctype = self.headers.get("Content-Type", "")
        body = self._body()
        if not ctype.startswith("multipart/form-data"):
            raise ApiFailure(415, "unsupported_media_type", "Send the images as multipart/form-data.")
        msg = BytesParser(policy=email_policy).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        fields: dict[str, str] = {}
        files: dict[str, list[bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files.setdefault(name, []).append(payload)
            else:
                fields[name] = payload.decode()
        return fields, files

    def _user(self) -> str:
        auth = self.headers.get("Authorization", "")
        if not auth:
            raise ApiFailure(401, "not_authenticated", "Authentication credentials were not provided.")
        token = auth.removeprefix("Token ").strip()
        user = self.state.tokens.get(token)
        if user is None:
            raise ApiFailure(401, "not_authenticated", "Invalid or expired token: please sign in again.")
        return user

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        self.state.log.append((method, path))
        n = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(n) if n else b""  # always read, so keep-alive connections stay in step
        try:
            for i, (prefix, failure) in enumerate(self.state.failures):
                if path.startswith(prefix):
                    del self.state.failures[i]
                    raise failure
            self._route(method, path, query)
        except ApiFailure as exc:
            if exc.raw is not None:
                return self._send(exc.status, exc.raw, "text/html", exc.headers)
            self._json(exc.status, {"error": {"code": exc.code, "message": exc.message, "details": {}}}, exc.headers)

    # ---------------------------------------------------------------- routes

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:  # noqa: C901 (a router)
        s = self.state
        if path == "/api/health/" and method == "GET":
            # like the real backend: a degraded server answers 503 with the same body
            return self._json(200 if s.model_loaded else 503,
                              {"status": "ok" if s.model_loaded else "degraded", "model_loaded": s.model_loaded,
                               "model_version": MODEL_VERSION if s.model_loaded else None, "database": "ok"})
        if path == "/api/model/" and method == "GET":
            if not s.model_loaded:
                raise ApiFailure(503, "model_unavailable", "The model is not loaded.")
            return self._json(200, {**MODEL_CARD, "plots": [{"name": "pairwise", "url": "/api/model/plots/pairwise.png"}]})
        if m := re.fullmatch(r"/api/model/plots/([\w.-]+)\.png", path):
            if m.group(1) == "pairwise":
                return self._send(200, plot_png(), "image/png")
            raise ApiFailure(404, "not_found", "No such plot.")
        if path == "/api/verify/" and method == "POST":
            if not s.model_loaded:
                raise ApiFailure(503, "model_unavailable", "The model is not loaded.")
            fields, files = self._multipart()
            ref = (files.get("reference") or files.get("image_1") or [None])[0]
            q = (files.get("questioned") or files.get("image_2") or [None])[0]
            if ref is None or q is None:
                raise ApiFailure(400, "missing_field", "Send two images: `reference` and `questioned`.")
            return self._json(200, verify_result(ref, q, previews=fields.get("previews") == "true",
                                                 explain=fields.get("explain") == "true"))
        if path.startswith("/api/datasets/"):
            return self._datasets(method, path[len("/api/datasets/"):], query)
        if path.startswith("/api/auth/"):
            return self._auth(method, path)
        if path.startswith("/api/profiles/"):
            return self._profiles(method, path[len("/api/profiles/"):])
        raise ApiFailure(404, "not_found", f"No route for {path}.")

    def _datasets(self, method: str, rest: str, query: dict[str, list[str]]) -> None:
        summary = {"name": DATASET, "layout": "generic", "writers": len(WRITERS),
                   "genuine": len(WRITERS) * N_GENUINE, "forged": len(WRITERS) * N_FORGED,
                   "splits": ["train", "validation", "test"]}
        if rest == "" and method == "GET":
            return self._json(200, {"datasets": [summary]})
        name, _, rest = rest.partition("/")
        if name != DATASET:
            raise ApiFailure(404, "not_found", f"No dataset named {name}.")
        if rest == "" and method == "GET":
            return self._json(200, {**summary, "writer_ids": WRITERS, "split_of_writer": SPLIT_OF_WRITER})
        if m := re.fullmatch(r"writers/([^/]+)/", rest):
            w = m.group(1)
            if w not in WRITERS:
                raise ApiFailure(404, "not_found", f"No writer {w}.")
            return self._json(200, {"writer": w, "split": SPLIT_OF_WRITER[w],
                                    "genuine": [_image_entry(p) for p in _paths(w, "genuine")],
                                    "forged": [_image_entry(p) for p in _paths(w, "forged")]})
        if rest.startswith("images/"):
            data = _dataset_image(rest[len("images/"):])
            if data is None:
                raise ApiFailure(404, "not_found", "No such image.")
            return self._send(200, data, "image/png")
        if rest == "pairs/" and method == "GET":
            q = {k: v[0] for k, v in query.items()}
            return self._json(200, {"pairs": _pairs(q.get("split"), q.get("kind", "genuine"),
                                                    int(q.get("limit", 10)), int(q.get("seed", 0)))})
        if rest == "pairs/verify/" and method == "POST":
            body = self._json_body()
            kind = body.get("kind", "mixed")
            pairs = _pairs(body.get("split"), kind, int(body.get("limit", 20)), int(body.get("seed", 0)))
            results = []
            for p in pairs:
                r = verify_result(_dataset_image(p["path_a"]), _dataset_image(p["path_b"]))
                results.append({**p, "distance": r["distance"], "verdict": r["verdict"],
                                "correct": r["verdict"] == p["label"]})
            acc = sum(r["correct"] for r in results) / len(results) if results else 0.0
            return self._json(200, {"results": results, "accuracy": acc, "n": len(results),
                                    "threshold": THRESHOLD, "model_version": MODEL_VERSION})
        raise ApiFailure(404, "not_found", "Not found.")

    def _auth(self, method: str, path: str) -> None:
        s = self.state
        if path == "/api/auth/register/" and method == "POST":
            body = self._json_body()
            username, password = str(body.get("username", "")).strip(), str(body.get("password", ""))
            if not username or not password:
                raise ApiFailure(400, "missing_field", "Username and password are required.")
            if username in s.users:
                raise ApiFailure(400, "invalid", "A user with that username already exists.")
            if len(password) < 8:
                raise ApiFailure(400, "invalid", "This password is too short. It must contain at least 8 characters.")
            token = s.add_user(username, password)
            return self._json(201, {"id": s.users[username]["id"], "username": username, "token": token})
        if path == "/api/auth/token/" and method == "POST":
            body = self._json_body()
            user = s.users.get(str(body.get("username", "")))
            if user is None or user["password"] != body.get("password"):
                raise ApiFailure(400, "invalid", "Unable to log in with provided credentials.")
            token = secrets.token_hex(20)
            s.tokens[token] = str(body["username"])
            return self._json(200, {"token": token})
        if path == "/api/auth/account/" and method == "DELETE":
            user = self._user()
            s.users.pop(user, None)
            for t in [t for t, u in s.tokens.items() if u == user]:
                del s.tokens[t]
            for pid in [p for p, v in s.profiles.items() if v["owner"] == user]:
                self._delete_profile(pid)
            return self._send(204, b"", "application/json")
        raise ApiFailure(405, "method_not_allowed", "Method not allowed.")

    def _profile_out(self, pid: int) -> dict[str, Any]:
        p = self.state.profiles[pid]
        n = sum(1 for r in self.state.references.values() if r["profile"] == pid)
        return {"id": pid, "name": p["name"], "external_id": p["external_id"], "created": p["created"], "reference_count": n}

    def _reference_out(self, rid: int) -> dict[str, Any]:
        """Like the real API: each reference scored against the profile's others (3 or more); an outlier is one
        whose mean distance to the others is beyond the pairwise threshold (another writer's signature)."""
        r = self.state.references[rid]
        others = [v["data"] for o, v in self.state.references.items() if v["profile"] == r["profile"] and o != rid]
        score = (sum(fake_distance(r["data"], o)[0] for o in others) / len(others)) if len(others) >= 2 else None
        return {"id": rid, "created": r["created"], "width": r["width"], "height": r["height"],
                "image_url": f"/api/profiles/{r['profile']}/references/{rid}/image/",
                "consistency_score": None if score is None else round(score, 4),
                "outlier": score is not None and score > THRESHOLD}

    @staticmethod
    def _guidance(n: int) -> dict[str, Any]:
        return {"reference_count": n, "published_k": [5, 10], "enough": n >= 5,
                "message": f"{n} references: " + ("enough for the published figures." if n >= 5 else
                                                   "the published figures need 5 (better 10).")}

    def _delete_profile(self, pid: int) -> None:
        for rid in [r for r, v in self.state.references.items() if v["profile"] == pid]:
            del self.state.references[rid]
        del self.state.profiles[pid]

    def _profiles(self, method: str, rest: str) -> None:
        s = self.state
        user = self._user()
        if rest == "":
            if method == "GET":
                results = [self._profile_out(p) for p, v in sorted(s.profiles.items()) if v["owner"] == user]
                return self._json(200, {"count": len(results), "next": None, "previous": None, "results": results})
            if method == "POST":
                body = self._json_body()
                name = str(body.get("name", "")).strip()
                if not name:
                    raise ApiFailure(400, "missing_field", "A profile needs a name.")
                pid = s.new_id()
                s.profiles[pid] = {"owner": user, "name": name, "external_id": str(body.get("external_id") or ""),
                                   "created": "2026-01-01T00:00:00Z"}
                return self._json(201, self._profile_out(pid))
            raise ApiFailure(405, "method_not_allowed", "Method not allowed.")
        m = re.fullmatch(r"(\d+)/(.*)", rest)
        if not m or int(m.group(1)) not in s.profiles or s.profiles[int(m.group(1))]["owner"] != user:
            raise ApiFailure(404, "not_found", "No such profile.")
        pid, sub = int(m.group(1)), m.group(2)
        if sub == "":
            if method == "GET":
                return self._json(200, self._profile_out(pid))
            if method == "PATCH":
                body = self._json_body()
                for k in ("name", "external_id"):
                    if k in body:
                        s.profiles[pid][k] = str(body[k])
                return self._json(200, self._profile_out(pid))
            if method == "DELETE":
                self._delete_profile(pid)
                return self._send(204, b"", "application/json")
        if sub == "references/":
            if method == "GET":
                refs = [self._reference_out(r) for r, v in sorted(s.references.items()) if v["profile"] == pid]
                return self._json(200, {"results": refs, "guidance": self._guidance(len(refs))})
            if method == "POST":
                _, files = self._multipart()
                images = files.get("images", []) + files.get("image", [])
                if not images:
                    raise ApiFailure(400, "missing_field", "Send one `image` or several `images`.")
                created = []
                enrolled = {v["data"]: r for r, v in s.references.items() if v["profile"] == pid}
                for i, data in enumerate(images):
                    if data in enrolled or data in images[:i]:  # like the real API: a repeated image is refused
                        raise ApiFailure(409, "duplicate_reference", "`images` repeats an enrolled reference "
                                         "(a repeated or copied image adds no evidence).")
                for data in images:
                    ink = _ink_map(data)  # validates: 415 / 400 blank
                    rid = s.new_id()
                    s.references[rid] = {"profile": pid, "data": data, "created": "2026-01-01T00:00:00Z",
                                         "width": ink.width, "height": ink.height}
                    created.append(rid)
                n = sum(1 for v in s.references.values() if v["profile"] == pid)
                return self._json(201, {"results": [self._reference_out(r) for r in created],
                                        "guidance": self._guidance(n)})
        if m2 := re.fullmatch(r"references/(\d+)/(image/)?", sub):
            rid = int(m2.group(1))
            if rid not in s.references or s.references[rid]["profile"] != pid:
                raise ApiFailure(404, "not_found", "No such reference.")
            if m2.group(2) and method == "GET":
                return self._send(200, s.references[rid]["data"], "image/png")
            if not m2.group(2) and method == "DELETE":
                del s.references[rid]
                return self._send(204, b"", "application/json")
        if sub == "verify/" and method == "POST":
            _, files = self._multipart()
            q = (files.get("questioned") or [None])[0]
            if q is None:
                raise ApiFailure(400, "missing_field", "Send the `questioned` image.")
            refs = [(r, v) for r, v in sorted(s.references.items()) if v["profile"] == pid]
            if not refs:
                raise ApiFailure(400, "no_references", "This profile has no reference signatures yet.")
            per = [{"id": r, "distance": verify_result(v["data"], q)["distance"]} for r, v in refs]
            mean = sum(p["distance"] for p in per) / len(per)
            spread = None
            if len(refs) > 1:  # like the real API: the mean divided by the references' own spread
                between = [fake_distance(a["data"], b["data"])[0] for i, (_, a) in enumerate(refs) for _, b in refs[i + 1:]]
                spread = max(sum(between) / len(between), 1e-6)
            score, threshold = (mean / spread, REFERENCE_THRESHOLD) if spread else (mean, THRESHOLD)
            match = score <= threshold
            return self._json(200, {
                "distance": round(score, 4), "threshold": threshold, "match": match,
                "verdict": "genuine" if match else "forged", **fake_decision(score, threshold),
                "flags": [], "copy_of_reference": None,
                "similarity": round(1 / (1 + math.exp(8 * (score - threshold) / threshold)), 4),
                "model_version": MODEL_VERSION, "elapsed_ms": 20.0,
                "references": per, "reference_count": len(per), "score": round(score, 4),
                "score_method": "normalized" if spread else "pairwise", "mean_distance": round(mean, 4),
                "reference_spread": round(spread, 4) if spread else None,
            })
        raise ApiFailure(405, "method_not_allowed", "Method not allowed.")


def _pairs(split: str | None, kind: str, limit: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    writers = [w for w in WRITERS if not split or SPLIT_OF_WRITER[w] == split]
    if not writers:
        return []
    out = []
    for i in range(max(0, min(limit, 200))):
        k = ("genuine", "skilled", "random")[i % 3] if kind == "mixed" else kind
        w = rng.choice(writers)
        if k == "genuine":
            a, b = rng.sample(_paths(w, "genuine"), 2)
            wb = w
        elif k == "skilled":
            a, b = rng.choice(_paths(w, "genuine")), rng.choice(_paths(w, "forged"))
            wb = w
        else:
            wb = rng.choice([x for x in WRITERS if x != w])
            a, b = rng.choice(_paths(w, "genuine")), rng.choice(_paths(wb, "genuine"))
        out.append({"kind": k, "label": "genuine" if k == "genuine" else "forged",
                    "writer_a": w, "path_a": a, "url_a": _image_entry(a)["url"],
                    "writer_b": wb, "path_b": b, "url_b": _image_entry(b)["url"]})
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeBackend:
    """`with FakeBackend() as fb: fb.url` — a threaded server on 127.0.0.1 at a free port."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.state = self.state  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-sigver", daemon=True)

    def start(self) -> "FakeBackend":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeBackend":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
