"""Mixed load on the production server, then an end check that nothing was lost.

N concurrent clients (default 8), each its own user with its own profiles, mix for a bounded time
(default 60 s; `--duration 15` for CI):
  verify two signatures (POST /api/verify/), enroll 1-3 references, verify a profile against its
  references, delete a reference, delete a profile (then create a new one)
against `gunicorn -c python:config.gunicorn config.wsgi` on a free loopback port (bench/_common.ApiServer:
DEBUG off, a throw-away SQLite database in WAL mode and media folder; throttling raised out of the way).
Every request uses its own connection and is never retried, so every failure is counted.

It reports requests served per operation with latency, HTTP errors by status, connection errors, and the
END CHECK read straight from the SQLite file and the media folder:
  * every reference a client was told was created (201) exists, with its image file and an embedding
    of embedding_dim float32 values, unless that client deleted it (or its profile) later;
  * every reference the clients deleted (204, also through their profile) is gone, and so is its file;
  * no row exists that no client was told about, and no file exists that no row names (after a worker
    kill: the files it left are listed, then removed by `manage.py sweep_reference_files`).
Exit status 0 only with no 5xx and a clean end check (connection errors: 0, or, with
--kill-worker-at, only requests sent before the kill, i.e. those the killed worker had accepted:
at most one per client).

  --kill-worker-at S   SIGKILL one gunicorn worker S seconds in (the master starts a new one)
  --write-burst N      afterwards, N threads create/rename/delete profiles as fast as they can
                       (SQLite write-lock contention; no request may fail)

    .venv/bin/python bench/load_mixed.py                      # 60 s, 8 clients, 2 workers
    .venv/bin/python bench/load_mixed.py --duration 15 --kill-worker-at 5 --json out.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BACKEND, VENV_BIN, ApiServer, cpu_note, multipart, percentiles_ms, resolve_model  # noqa: E402

OPERATIONS = {"verify": 0.35, "enroll": 0.25, "profile_verify": 0.25, "delete_reference": 0.10, "delete_profile": 0.05}


def signature_pngs(n: int) -> list[bytes]:
    from sigml.testing import image_bytes, signature_image

    return [image_bytes(signature_image(seed, size=(300, 120)), "PNG") for seed in range(n)]


class ConnectionFailed(Exception):
    pass


def call(host: str, port: int, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
         token: str | None = None, timeout: float = 120.0) -> tuple[int, dict]:
    """One request on its own connection, never retried (a retried POST could enroll twice)."""
    headers = {"Connection": "close"}
    if content_type:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Token {token}"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    try:
        return response.status, json.loads(data) if data else {}
    except ValueError:
        return response.status, {"_raw": data[:200].decode(errors="replace")}


def json_body(payload: dict) -> tuple[bytes, str]:
    return json.dumps(payload).encode(), "application/json"


@dataclass
class Ledger:
    """What the clients were told."""
    created: dict[int, int] = field(default_factory=dict)  # reference id -> profile id
    deleted: set[int] = field(default_factory=set)
    profiles_deleted: set[int] = field(default_factory=set)
    unknown_enrolls: int = 0  # enroll requests whose outcome the client never learnt (connection failed)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    connection_errors: list[str] = field(default_factory=list)
    failed_started: list[float] = field(default_factory=list)  # time.monotonic() when each failed request was sent
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, status: int, seconds: float, body: dict, expected: tuple[int, ...]) -> None:
        with self.lock:
            self.statuses[op][status] += 1
            if status < 400:
                self.latency[op].append(seconds)
            if status not in expected:
                self.unexpected.append(f"{op}: {status} {str(body)[:200]}")


class LoadClient(threading.Thread):
    def __init__(self, index: int, server: ApiServer, images: list[bytes], deadline: float, ledger: Ledger,
                 stats: Stats, seed: int) -> None:
        super().__init__(daemon=True, name=f"client-{index}")
        self.index, self.server, self.images, self.deadline = index, server, images, deadline
        self.ledger, self.stats = ledger, stats
        self.rng = random.Random(seed * 1000 + index)
        self.token = ""
        self.profiles: dict[int, list[int]] = {}  # profile id -> its live reference ids, as this client knows them
        self.drawn = 0

    def new_signature(self) -> bytes:
        """A signature never sent before: enrolment refuses a repeated image (409 duplicate_reference)."""
        from sigml.testing import image_bytes, signature_image

        self.drawn += 1
        return image_bytes(signature_image(1_000_000 * (self.index + 1) + self.drawn, size=(300, 120)), "PNG")

    def http(self, op: str, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
             expected: tuple[int, ...] = (200,)) -> tuple[int, dict] | None:
        started, sent = time.perf_counter(), time.monotonic()
        try:
            status, data = call(self.server.host, self.server.port, method, path, body, content_type, self.token)
        except ConnectionFailed as exc:
            with self.stats.lock:
                self.stats.connection_errors.append(f"{op} {method} {path}: {exc}")
                self.stats.failed_started.append(sent)
            return None
        self.stats.record(op, status, time.perf_counter() - started, data, expected)
        return status, data

    def setup(self) -> None:
        user = f"load{self.index}-{self.rng.randrange(10**9)}"
        body, ctype = json_body({"username": user, "password": f"load test passphrase {user}"})
        status, data = call(self.server.host, self.server.port, "POST", "/api/auth/register/", body, ctype)
        if status != 201:
            raise RuntimeError(f"register failed: {status} {data}")
        self.token = data["token"]
        for _ in range(2):
            self.new_profile()

    def new_profile(self) -> None:
        body, ctype = json_body({"name": f"Person {self.rng.randrange(10**6)}"})
        result = self.http("create_profile", "POST", "/api/profiles/", body, ctype, expected=(201,))
        if result and result[0] == 201:
            self.profiles[result[1]["id"]] = []

    def pick_profile(self) -> int | None:
        return self.rng.choice(sorted(self.profiles)) if self.profiles else None

    def run(self) -> None:
        ops, weights = zip(*OPERATIONS.items())
        while time.monotonic() < self.deadline:
            getattr(self, "op_" + self.rng.choices(ops, weights)[0])()

    def op_verify(self) -> None:
        a, b = self.rng.sample(self.images, 2)
        body, ctype = multipart([("reference", "a.png", a), ("questioned", "b.png", b)])
        self.http("verify", "POST", "/api/verify/", body, ctype)

    def op_enroll(self) -> None:
        profile = self.pick_profile()
        if profile is None:
            return self.new_profile()
        if len(self.profiles[profile]) >= 40:
            return self.op_delete_reference()
        files = [("images", f"r{i}.png", self.new_signature()) for i in range(self.rng.randint(1, 3))]
        body, ctype = multipart(files)
        result = self.http("enroll", "POST", f"/api/profiles/{profile}/references/", body, ctype, expected=(201,))
        if result is None:
            with self.ledger.lock:
                self.ledger.unknown_enrolls += len(files)
        elif result[0] == 201:
            ids = [r["id"] for r in result[1]["results"]]
            self.profiles[profile] += ids
            with self.ledger.lock:
                self.ledger.created.update({i: profile for i in ids})

    def op_profile_verify(self) -> None:
        profile = self.pick_profile()
        if profile is None or not self.profiles[profile]:
            return self.op_enroll()
        body, ctype = multipart([("questioned", "q.png", self.rng.choice(self.images))])
        self.http("profile_verify", "POST", f"/api/profiles/{profile}/verify/", body, ctype)

    def op_delete_reference(self) -> None:
        profile = self.pick_profile()
        if profile is None or not self.profiles[profile]:
            return self.op_enroll()
        ref = self.rng.choice(self.profiles[profile])
        result = self.http("delete_reference", "DELETE", f"/api/profiles/{profile}/references/{ref}/", expected=(204,))
        if result and result[0] == 204:
            self.profiles[profile].remove(ref)
            with self.ledger.lock:
                self.ledger.deleted.add(ref)

    def op_delete_profile(self) -> None:
        profile = self.pick_profile()
        if profile is None or len(self.profiles) < 2:
            return self.new_profile()
        result = self.http("delete_profile", "DELETE", f"/api/profiles/{profile}/", expected=(204,))
        if result and result[0] == 204:
            with self.ledger.lock:
                self.ledger.deleted.update(self.profiles[profile])
                self.ledger.profiles_deleted.add(profile)
            del self.profiles[profile]
            self.new_profile()


def write_burst(server: ApiServer, threads: int, per_thread: int) -> dict:
    """`threads` clients that only write: create, rename and delete profiles, no pause in between."""
    stats = Stats()
    tokens = []
    for i in range(threads):
        body, ctype = json_body({"username": f"writer{i}-{random.randrange(10**9)}", "password": "a writer's long passphrase"})
        status, data = call(server.host, server.port, "POST", "/api/auth/register/", body, ctype)
        assert status == 201, data
        tokens.append(data["token"])

    def writer(token: str) -> None:
        for n in range(per_thread):
            for op, method, path, payload, expected in (
                ("create_profile", "POST", "/api/profiles/", {"name": f"w{n}"}, (201,)),
            ):
                started = time.perf_counter()
                try:
                    body, ctype = json_body(payload)
                    status, data = call(server.host, server.port, method, path, body, ctype, token)
                except ConnectionFailed as exc:
                    stats.connection_errors.append(str(exc))
                    continue
                stats.record(op, status, time.perf_counter() - started, data, expected)
                if status != 201:
                    continue
                pid = data["id"]
                for op2, method2, payload2, expected2 in (("rename_profile", "PATCH", {"name": f"w{n}b"}, (200,)),
                                                          ("delete_profile", "DELETE", None, (204,))):
                    started = time.perf_counter()
                    try:
                        body2, ctype2 = json_body(payload2) if payload2 else (None, None)
                        status2, data2 = call(server.host, server.port, method2, f"/api/profiles/{pid}/", body2, ctype2, token)
                    except ConnectionFailed as exc:
                        stats.connection_errors.append(str(exc))
                        continue
                    stats.record(op2, status2, time.perf_counter() - started, data2, expected2)

    started = time.perf_counter()
    pool = [threading.Thread(target=writer, args=(t,)) for t in tokens]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    served = sum(sum(c.values()) for c in stats.statuses.values())
    return {"threads": threads, "requests": served, "seconds": round(elapsed, 1),
            "writes_per_s": round(served / elapsed, 1),
            "statuses": {op: dict(c) for op, c in stats.statuses.items()},
            "unexpected": stats.unexpected[:20], "connection_errors": stats.connection_errors[:20],
            "failed": len(stats.unexpected) + len(stats.connection_errors)}


def end_check(server: ApiServer, ledger: Ledger) -> dict:
    """Compare what the clients were told with the SQLite file and the media folder."""
    db = sqlite3.connect(f"file:{server.tmp / 'db.sqlite3'}?mode=ro", uri=True, timeout=30)
    rows = {rid: (pid, image, blob, dim) for rid, pid, image, blob, dim in
            db.execute("SELECT id, profile_id, image, embedding, embedding_dim FROM signatures_reference")}
    db.close()
    media = server.tmp / "media"
    problems = []
    alive = {rid: pid for rid, pid in ledger.created.items() if rid not in ledger.deleted}
    for rid, pid in alive.items():
        row = rows.get(rid)
        if row is None:
            problems.append(f"reference {rid} was created (201) and never deleted, but has no row")
            continue
        if row[0] != pid:
            problems.append(f"reference {rid} belongs to profile {row[0]}, not {pid}")
        if not row[1] or not (media / row[1]).is_file() or (media / row[1]).stat().st_size == 0:
            problems.append(f"reference {rid}: image file {row[1]!r} missing or empty")
        if not row[3] or len(bytes(row[2])) != 4 * row[3]:
            problems.append(f"reference {rid}: embedding of {len(bytes(row[2] or b''))} bytes for dim {row[3]}")
    for rid in ledger.deleted:
        if rid in rows:
            problems.append(f"reference {rid} was deleted (204) but its row remains")
    untold = sorted(set(rows) - set(ledger.created))
    files = {f"references/{p.name}" for p in (media / "references").glob("*") if p.is_file()} if (media / "references").is_dir() else set()
    named = {row[1] for row in rows.values()}
    orphan_files = sorted(files - named)
    missing_files = sorted(n for n in named if n not in files)
    return {"references_told_created": len(ledger.created), "references_told_deleted": len(ledger.deleted),
            "references_alive_expected": len(alive), "rows": len(rows), "files": len(files),
            "rows_no_client_was_told_about": len(untold), "enroll_outcomes_unknown": ledger.unknown_enrolls,
            "orphan_files": orphan_files, "rows_without_file": missing_files, "problems": problems}


def sweep(server: ApiServer) -> str:
    env = {**server.env, "SIGVER_LOAD_MODEL": "0"}
    done = subprocess.run([str(VENV_BIN / "python"), "manage.py", "sweep_reference_files", "--older-than", "0"],
                          cwd=BACKEND, env=env, capture_output=True, text=True, timeout=120)
    return (done.stdout + done.stderr).strip().splitlines()[-1] if (done.stdout + done.stderr).strip() else ""


def run(args: argparse.Namespace) -> dict:
    os.environ.pop("DATABASE_URL", None)  # always the throw-away SQLite file the end check reads
    model = resolve_model(args.model)
    images = signature_pngs(24)
    env = {"SIGVER_SQLITE_BUSY_TIMEOUT": str(args.sqlite_busy_timeout)}
    server = ApiServer(model, workers=args.workers, threads=args.threads, torch_threads=args.torch_threads, env=env)
    report: dict = {"cpu": cpu_note(), "duration_s": args.duration, "clients": args.clients}
    server.start()
    try:
        report["server"] = server.describe()
        ledger, stats = Ledger(), Stats()
        clients = [LoadClient(i, server, images, 0.0, ledger, stats, args.seed) for i in range(args.clients)]
        for c in clients:
            c.setup()
        started = time.perf_counter()
        for c in clients:
            c.deadline = time.monotonic() + args.duration
            c.start()
        killed = None
        if args.kill_worker_at is not None:
            time.sleep(args.kill_worker_at)
            victims = server.worker_pids()
            if victims:
                killed = victims[0]
                os.kill(killed, signal.SIGKILL)
                killed_at = time.monotonic()
                report["killed_worker"] = {"pid": killed, "at_s": args.kill_worker_at}
        for c in clients:
            c.join(args.duration + 300)
        elapsed = time.perf_counter() - started
        served = sum(sum(c.values()) for c in stats.statuses.values())
        statuses = Counter()
        for counter in stats.statuses.values():
            statuses.update(counter)
        report.update({
            "elapsed_s": round(elapsed, 1), "requests": served, "requests_per_s": round(served / elapsed, 2),
            "by_operation": {op: {"n": sum(c.values()), "statuses": dict(c),
                                  **{k: round(v, 1) for k, v in percentiles_ms(stats.latency[op]).items() if k != "n"}}
                             for op, c in sorted(stats.statuses.items())},
            "status_5xx": sum(n for s, n in statuses.items() if s >= 500),
            "status_4xx": sum(n for s, n in statuses.items() if 400 <= s < 500),
            "unexpected": stats.unexpected[:20],
            "connection_errors": len(stats.connection_errors), "connection_error_samples": stats.connection_errors[:8],
            "workers_after": len(server.worker_pids()),
        })
        if killed is not None:
            report["replacement_worker"] = [p for p in server.worker_pids() if p != killed]
            # only requests already sent to the killed worker may fail: none sent after the kill
            report["failed_requests_sent_after_kill"] = sum(t > killed_at for t in stats.failed_started)
        check = end_check(server, ledger)
        if check["orphan_files"]:
            check["sweep"] = sweep(server)
            check["orphan_files_after_sweep"] = end_check(server, ledger)["orphan_files"]
        report["end_check"] = check
        if args.write_burst:
            report["write_burst"] = write_burst(server, args.write_burst, args.burst_rounds)
        report["server_log_errors"] = [line for line in server.log_tail(200_000).splitlines()
                                       if "Traceback" in line or " ERROR " in line][:10]
    finally:
        server.stop()
    # with a kill: at most the requests in flight on that worker (each client has one request open at a time)
    allowed_conn_errors = args.clients if args.kill_worker_at is not None else 0
    check = report["end_check"]
    report["ok"] = bool(
        report["status_5xx"] == 0 and not report["unexpected"] and report["connection_errors"] <= allowed_conn_errors
        and report.get("failed_requests_sent_after_kill", 0) == 0
        and not check["problems"] and not check["rows_without_file"]
        and check["rows_no_client_was_told_about"] <= check["enroll_outcomes_unknown"]
        and not check.get("orphan_files_after_sweep", check["orphan_files"])
        and (args.kill_worker_at is not None or not check["orphan_files"])
        and (not args.write_burst or report["write_burst"]["failed"] == 0)
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--torch-threads", type=int, default=1, help="SIGVER_TORCH_THREADS per worker")
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "trained_model_parameters" / "siamese_resnet18.safetensors"))
    parser.add_argument("--kill-worker-at", type=float, default=None, help="SIGKILL one worker this many seconds in")
    parser.add_argument("--write-burst", type=int, default=0, help="then N threads that only write (SQLite contention)")
    parser.add_argument("--burst-rounds", type=int, default=15, help="create+rename+delete rounds per burst thread")
    parser.add_argument("--sqlite-busy-timeout", type=int, default=20,
                        help="SIGVER_SQLITE_BUSY_TIMEOUT of the server (default 20, the production default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    c = report["end_check"]
    print(f"\n{report['requests']} requests in {report['elapsed_s']} s ({report['requests_per_s']}/s) from {args.clients} "
          f"clients; 5xx: {report['status_5xx']}; connection errors: {report['connection_errors']}; end check: "
          f"{c['references_alive_expected']} live references expected, {c['rows']} rows, {len(c['problems'])} problems, "
          f"{len(c['orphan_files'])} orphan files; {'OK' if report['ok'] else 'FAILED'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
