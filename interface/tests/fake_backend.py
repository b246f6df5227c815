"""A tiny in-process HTTP server for the failures a real backend does not produce on demand, for the interface
tests; and `make_signature`, which draws the test signatures.

The page tests run against the real backend (tests/live_backend.py). This one answers what a test queued with
`state.fail_next(...)` (a 413, a 500, a non-JSON 502 from a proxy, a 403, a 422 `not_a_signature` with its
`suggested_crops`), and registers users so that a test can send a token. For the crop step it also answers
POST /api/locate/ (`state.located`: the boxes it "finds"), POST /api/verify/, POST /api/profiles/<id>/references/ and
POST /api/profiles/<id>/verify/ with a canned answer (`auto_crops` when `auto_crop=true` was sent), and keeps the
multipart fields of every POST in `state.posts`, so that a test reads what the interface sent (crop boxes, `crops`,
`auto_crop`). Anything else is a 404.
"""

from __future__ import annotations

import io
import json
import random
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image, ImageDraw


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


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, raw: bytes | None = None,
                 details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.raw = status, code, message, headers or {}, raw
        self.details = details or {}


def multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a multipart/form-data body in order: (name, value), a file's value being its file name."""
    if not content_type.startswith("multipart/"):
        return []
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        fields.append((str(name), filename if filename is not None else part.get_payload(decode=True).decode()))
    return fields


def located_answer(boxes: list[tuple[list[int], float]], image_size: tuple[int, int] = (850, 1100)) -> dict[str, Any]:
    """A POST /api/locate/ answer with these (box, confidence), best first."""
    return {"signatures": [{"box": list(box), "confidence": c, "crop": ",".join(map(str, box))} for box, c in boxes],
            "count": len(boxes), "image_size": list(image_size), "elapsed_ms": 1.0,
            "note": "The locator finds about 9 in 10 signatures on documents: an empty list does not mean none."}


FAKE_DECISION = {"decision": "inconclusive", "score": 0.5, "score_method": "pairwise", "threshold": 0.5,
                 "decision_rates": {"genuine_below": 0.3, "forged_above": 0.8}, "flags": [], "warnings": [],
                 "model_version": "fake", "elapsed_ms": 1.0}
THUMBNAIL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="


# --------------------------------------------------------------------------------------------
# state


@dataclass
class FakeState:
    users: dict[str, str] = field(default_factory=dict)  # username -> password
    failures: list[tuple[str, ApiFailure]] = field(default_factory=list)
    located: dict[str, Any] = field(default_factory=lambda: located_answer([([300, 900, 600, 1020], 0.87)]))
    posts: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # (path, multipart fields)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def fail_next(self, path_prefix: str, status: int, code: str = "error", message: str = "",
                  headers: dict[str, str] | None = None, raw: bytes | None = None,
                  details: dict[str, Any] | None = None) -> None:
        """The next request whose path starts with `path_prefix` gets this error instead of its answer
        (`raw`: a non-JSON body sent as text/html, as a proxy in front of the API would)."""
        self.failures.append((path_prefix, ApiFailure(status, code, message, headers, raw, details)))

    def sent(self, path_prefix: str) -> list[list[tuple[str, str]]]:
        """The multipart fields of every POST so far whose path starts with `path_prefix`, oldest first."""
        return [fields for path, fields in self.posts if path.startswith(path_prefix)]


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

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _dispatch(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""  # always read, so keep-alive connections stay in step
        try:
            for i, (prefix, failure) in enumerate(self.state.failures):
                if path.startswith(prefix):
                    del self.state.failures[i]
                    raise failure
            if path == "/api/auth/register/" and method == "POST":
                return self._register(json.loads(body or b"{}"))
            if method == "POST":
                fields = multipart_fields(self.headers.get("Content-Type") or "", body)
                self.state.posts.append((path, fields))
                return self._crop_step(path, fields)
            raise ApiFailure(404, "not_found", f"No route for {path}.")
        except ApiFailure as exc:
            if exc.raw is not None:
                return self._send(exc.status, exc.raw, "text/html", exc.headers)
            self._json(exc.status, {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
                       exc.headers)

    def _crop_step(self, path: str, fields: list[tuple[str, str]]) -> None:
        """Canned answers of the endpoints that take a signature (what they judged is not the point here)."""
        values = dict(fields)
        auto = [{"field": "questioned", "box": [300, 900, 600, 1020], "crop": "300,900,600,1020", "confidence": 0.87,
                 "thumbnail": THUMBNAIL}] if values.get("auto_crop") == "true" else []
        if path == "/api/locate/":
            return self._json(200, self.state.located)
        if path == "/api/verify/":
            return self._json(200, {**FAKE_DECISION, "auto_crops": auto})
        if re.fullmatch(r"/api/profiles/\d+/verify/", path):
            return self._json(200, {**FAKE_DECISION, "score_method": "mean", "references": [], "reference_count": 0,
                                    "copy_of_reference": None, "mean_distance": 0.5, "reference_spread": None,
                                    "auto_crops": auto})
        if re.fullmatch(r"/api/profiles/\d+/references/", path):
            crops = [value for name, value in fields if name == "crops"]
            files = [value for name, value in fields if name in ("image", "images")]
            return self._json(201, {"results": [
                {"id": self.state.new_id(), "crop": crops[i] if i < len(crops) else "", "name": name}
                for i, name in enumerate(files)], "guidance": {}})
        raise ApiFailure(404, "not_found", f"No route for {path}.")

    def _register(self, body: dict[str, Any]) -> None:
        username, password = str(body.get("username", "")).strip(), str(body.get("password", ""))
        if not username or not password or username in self.state.users:
            raise ApiFailure(400, "invalid", "A user name that is free and a password are required.")
        self.state.users[username] = password
        self._json(201, {"id": self.state.new_id(), "username": username, "token": secrets.token_hex(20)})


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
