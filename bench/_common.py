"""Shared by the API benchmarks: the model to time, a gunicorn server started the production way on a
free loopback port, its resident memory, real signature pairs as upload bytes, a keep-alive client.

Nothing here is a test; the benchmarks print their figures. Run them with the project's environment
from the repository root (`.venv/bin/python bench/NAME.py --help`).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
DEFAULT_MODEL = ROOT / "trained_model_parameters" / "siamese_resnet18.safetensors"
DEFAULT_DATA = (ROOT / ".." / "shared" / "datasets").resolve()
VENV_BIN = Path(sys.executable).parent


# --- arguments, the model ---------------------------------------------------------------------------

def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="weights (.safetensors with its .json card); an untrained model of the same "
                             "architecture is timed when it does not exist")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder holding CEDAR/ and GPDS/")
    parser.add_argument("--quick", action="store_true", help="smoke mode: a few requests only, to check the bench runs")


def resolve_model(path: str | Path) -> Path:
    """`path` if it exists, else a freshly made untrained model of the same architecture (with a printed note)."""
    path = Path(path).resolve()  # the server runs in backend/: a relative path would point elsewhere
    if path.is_file():
        return path
    from sigml.testing import make_test_model

    made = make_test_model(Path(tempfile.mkdtemp(prefix="bench-model-")))
    print(f"NOTE: no model at {path}: timing an untrained model of the same architecture ({made}); "
          "speed and memory are representative, verdicts are not")
    return made


def cpu_note() -> str:
    """CPU count and whether the training job (or anything else busy) competes for the cores."""
    load1 = os.getloadavg()[0]
    busy = subprocess.run(["pgrep", "-f", "sigml train"], capture_output=True, text=True).stdout.split()
    busy = [p for p in busy if int(p) != os.getpid()]
    note = f"{os.cpu_count()} CPU cores, load average {load1:.2f}"
    if busy:
        note += f"; UNDER CPU CONTENTION: a `sigml train` job is running (pid {','.join(busy)})"
    return note


# --- numbers ----------------------------------------------------------------------------------------

def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds, dtype=np.float64) * 1000.0
    if len(a) == 0:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan")}
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def format_ms(stats: dict[str, float]) -> str:
    return (f"p50 {stats['p50']:.1f} ms  p95 {stats['p95']:.1f} ms  p99 {stats['p99']:.1f} ms  "
            f"mean {stats['mean']:.1f} ms  (n={stats['n']})")


# --- real signature pairs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SignaturePair:
    kind: str  # "genuine" (genuine-genuine) or "skilled" (genuine-skilled forgery)
    reference_name: str
    questioned_name: str
    reference: bytes
    questioned: bytes


def raw_scan(data: bytes, size: tuple[int, int] = (1000, 300)) -> bytes:
    """A ~1000x300 'raw scan' made from a dataset image (the shared datasets are all 256x256): resized
    to the usual aspect ratio of a scanned signature box and saved as PNG, as a user would upload it."""
    with Image.open(io.BytesIO(data)) as image:
        big = image.convert("L").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    return buf.getvalue()


def _writers(data_dir: str | Path) -> list[tuple[Path, dict[str, list[str]]]]:
    """(dataset root, {"genuine": paths, "forged": paths}) of every writer of CEDAR and GPDS (whichever exist)."""
    from sigml.datasets import read_dataset

    found: list[tuple[Path, dict[str, list[str]]]] = []
    for name in ("CEDAR", "GPDS"):
        root = Path(data_dir) / name
        if not root.is_dir():
            continue
        writers: dict[str, dict[str, list[str]]] = {}
        for r in read_dataset(root, name=name):
            writers.setdefault(r.writer, {"genuine": [], "forged": []})[r.label].append(r.path)
        found += [(root, w) for w in writers.values() if len(w["genuine"]) >= 2 and w["forged"]]
    if not found:
        raise SystemExit(f"no CEDAR/ or GPDS/ dataset under {data_dir} (use --data)")
    return found


def load_pairs(data_dir: str | Path, n: int, *, seed: int = 0, raw: bool = False) -> list[SignaturePair]:
    """`n` real pairs from CEDAR and GPDS (whichever exist), half genuine-genuine, half genuine-skilled,
    as the bytes of the files (or of ~1000x300 raw-scan versions of them with `raw`)."""
    rng = np.random.default_rng(seed)
    by_writer = _writers(data_dir)
    pairs = []
    for i in range(n):
        root, w = by_writer[int(rng.integers(len(by_writer)))]
        a, b = rng.choice(len(w["genuine"]), size=2, replace=False)
        ref = w["genuine"][int(a)]
        kind = "genuine" if i % 2 == 0 else "skilled"
        q = w["genuine"][int(b)] if kind == "genuine" else w["forged"][int(rng.integers(len(w["forged"])))]
        ref_bytes, q_bytes = (root / ref).read_bytes(), (root / q).read_bytes()
        if raw:
            ref_bytes, q_bytes = raw_scan(ref_bytes), raw_scan(q_bytes)
        pairs.append(SignaturePair(kind, f"{root.name}/{ref}", f"{root.name}/{q}", ref_bytes, q_bytes))
    return pairs


def load_writer(data_dir: str | Path, references: int, *, seed: int = 0) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """One real writer with at least `references` + 1 genuine signatures: (`references` genuine files to
    enroll, the writer's other genuine signatures and skilled forgeries to question), as (name, bytes)."""
    rng = np.random.default_rng(seed)
    candidates = [(root, w) for root, w in _writers(data_dir) if len(w["genuine"]) > references]
    root, w = candidates[int(rng.integers(len(candidates)))]
    genuine = [w["genuine"][int(i)] for i in rng.permutation(len(w["genuine"]))]
    refs = [(f"{root.name}/{path}", (root / path).read_bytes()) for path in genuine[:references]]
    questioned = [(f"{root.name}/{path}", (root / path).read_bytes()) for path in genuine[references:] + w["forged"]]
    return refs, questioned


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# --- HTTP -------------------------------------------------------------------------------------------

def multipart(files: list[tuple[str, str, bytes]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename, bytes) files (a field may repeat), built once so
    that the client spends no time per request on it."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        ctype = "image/png" if filename.lower().endswith(".png") else "image/jpeg"
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def verify_body(pair: SignaturePair) -> tuple[bytes, str]:
    return multipart([("reference", Path(pair.reference_name).name, pair.reference),
                      ("questioned", Path(pair.questioned_name).name, pair.questioned)])


class Client:
    """One keep-alive HTTP/1.1 connection (reconnects after errors), like one client service."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        all_headers = dict(headers or {})
        if content_type:
            all_headers["Content-Type"] = content_type
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body, "application/json" if body else None, headers)
        return status, json.loads(data or b"{}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the server -------------------------------------------------------------------------------------

def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process in kB (empty when it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _pss_kb(pid: int) -> int:
    """Proportional set size: resident memory with shared pages (torch's libraries) split between sharers."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return kids


class ApiServer:
    """`gunicorn -c python:config.gunicorn config.wsgi` (the README's production command) on a free
    loopback port, with a throw-away SQLite database (migrated first) and media folder.

    Throttling is raised out of the way (a benchmark is one client sending many requests) and the
    access log is off; everything else is the production configuration (DEBUG off).
    """

    def __init__(self, model: Path, *, workers: int = 1, threads: int = 4, torch_threads: int = 2,
                 env: dict[str, str] | None = None, startup_timeout: float = 180.0) -> None:
        from sigml.testing import free_port

        self.model, self.workers, self.threads, self.torch_threads = model, workers, threads, torch_threads
        self.extra_env, self.startup_timeout = env or {}, startup_timeout
        self.host, self.port = "127.0.0.1", free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
        self.proc: subprocess.Popen | None = None
        self.peak_rss_kb = 0
        self._sampling = False
        self._sampler: threading.Thread | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "SIGVER_", "DJANGO_"))}
        env.update({
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "SIGVER_MODEL_PATH": str(self.model),
            "SIGVER_SQLITE_PATH": str(self.tmp / "db.sqlite3"),
            "SIGVER_MEDIA_ROOT": str(self.tmp / "media"),
            "SIGVER_TORCH_THREADS": str(self.torch_threads),
            "SIGVER_THROTTLE_ANON": "1000000/min",
            "SIGVER_THROTTLE_USER": "1000000/min",
            "SIGVER_THROTTLE_AUTH": "1000000/min",
            "GUNICORN_BIND": f"{self.host}:{self.port}",
            "GUNICORN_WORKERS": str(self.workers),
            "GUNICORN_THREADS": str(self.threads),
            "GUNICORN_ACCESSLOG": "/dev/null",
        })
        env.update(self.extra_env)
        return env

    def start(self) -> "ApiServer":
        env = self.env
        subprocess.run([str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=BACKEND, env={**env, "SIGVER_LOAD_MODEL": "0"}, check=True)
        self.log = open(self.tmp / "gunicorn.log", "wb")
        self.proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", "python:config.gunicorn", "config.wsgi"],
                                     cwd=BACKEND, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = Client(self.host, self.port, timeout=10)
        ready_workers: set[int] = set()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, body = client.json("GET", "/api/health/")
                if status == 200 and body.get("model_loaded"):
                    # every worker loads the model after the fork: wait until all are up and idle
                    ready_workers = set(self.worker_pids())
                    if len(ready_workers) >= self.workers:
                        client.close()
                        time.sleep(1.0 if self.workers > 1 else 0.2)
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the API did not answer /api/health/ within {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return (self.tmp / "gunicorn.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def worker_pids(self) -> list[int]:
        return _children(self.proc.pid) if self.proc else []

    def rss_mb(self) -> dict[str, float]:
        """Current resident memory: master, each worker, and the whole server (MB)."""
        master = _proc_status(self.proc.pid).get("VmRSS", 0)
        workers = [_proc_status(p).get("VmRSS", 0) for p in self.worker_pids()]
        return {"master": master / 1024, "workers": [w / 1024 for w in workers], "total": (master + sum(workers)) / 1024}

    def peak_mb(self) -> dict[str, float]:
        """Peak resident memory: per worker (the kernel's VmHWM) and of the whole server (sampled every 50 ms)."""
        workers = [_proc_status(p).get("VmHWM", 0) / 1024 for p in self.worker_pids()]
        master = _proc_status(self.proc.pid).get("VmHWM", 0) / 1024
        return {"master": master, "workers": workers, "max_worker": max(workers, default=0.0),
                "total": max(self.peak_rss_kb / 1024, self.rss_mb()["total"]),
                "pss_workers": [_pss_kb(p) / 1024 for p in self.worker_pids()]}

    def _sample(self) -> None:
        while self._sampling and self.proc and self.proc.poll() is None:
            self.peak_rss_kb = max(self.peak_rss_kb, int(self.rss_mb()["total"] * 1024))
            time.sleep(0.05)

    def describe(self) -> str:
        return (f"gunicorn -c python:config.gunicorn config.wsgi on {self.host}:{self.port}: "
                f"{self.workers} worker(s) x {self.threads} threads, SIGVER_TORCH_THREADS={self.torch_threads}")

    def client(self) -> Client:
        return Client(self.host, self.port)

    def stop(self) -> None:
        self._sampling = False
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def print_memory(server: ApiServer) -> None:
    peak = server.peak_mb()
    workers = ", ".join(f"{w:.0f}" for w in peak["workers"])
    pss = ", ".join(f"{w:.0f}" for w in peak["pss_workers"])
    print(f"server resident memory (peak): per worker [{workers}] MB (max {peak['max_worker']:.0f} MB), "
          f"master {peak['master']:.0f} MB, whole server incl. workers {peak['total']:.0f} MB; "
          f"now per worker PSS (shared library pages split) [{pss}] MB")


# --- where the time goes ----------------------------------------------------------------------------

# (label, frame-name prefix) of the parts of POST /api/verify/ that the py-spy breakdown reports
VERIFY_PARTS = (
    ("whole request in Django (get_response)", "BaseHandler.get_response "),
    ("  multipart parsing + upload checks", "upload_read "),
    ("  preprocessing (decode, Otsu, specks, crop, fit)", "preprocess_array "),
    ("    load_image (decode)", "load_image "),
    ("    remove_background", "remove_background "),
    ("    fit_to_canvas", "fit_to_canvas "),
    ("  forward pass (Verifier.embed_tensors)", "Verifier.embed_tensors "),
    ("    convolutions", "Conv2d._conv_forward "),
)


def py_spy_record(pid: int, seconds: float, out: Path) -> bool:
    """Sample a server worker with py-spy (raw folded stacks, native frames off); False if py-spy is missing."""
    exe = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if not exe:
        print("py-spy is not installed (pip install py-spy): no breakdown")
        return False
    subprocess.run([exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250", "--format", "raw",
                    "-o", str(out), "--nonblocking"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out.is_file()


def folded_breakdown(folded: Path, parts=VERIFY_PARTS) -> list[tuple[str, float]]:
    """Share of the busy samples of a folded-stacks file (py-spy raw format) spent inside each part."""
    total, inside = 0, {label: 0 for label, _ in parts}
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        frames = stack.split(";")
        for label, prefix in parts:
            if any(frame.startswith(prefix) for frame in frames):
                inside[label] += int(count)
    return [(label, inside[label] / total if total else 0.0) for label, _ in parts]
