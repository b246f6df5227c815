"""Rows and files stay one to one when a worker is SIGKILLed during uploads (issue 29, finding 2): gunicorn on
loopback (1 worker, 4 threads, the case records keeping their images), clients enrolling references and verifying
against the profile while the worker is killed KILLS times at random moments; after a restart (whose start-up sweep
runs), every reference row has its file and every file a row, in media/references/ and media/audit/, no temporary
file is left and every stored file is 0640. Bounded: a few seconds per kill."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path

import requests

from api_helpers import png
from live_gunicorn import live_env, migrate, needs_gunicorn, start, stop, wait_for
from sigml.testing import free_port

KILLS = 3

pytestmark = needs_gunicorn


def children(pid: int) -> list[int]:
    """The live (not yet reaped: not zombie) child processes of `pid`."""
    try:
        pids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    live = []
    for child in pids:
        try:
            if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                live.append(child)
        except OSError:
            continue
    return live


def wait_ready(url: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> int:
    """Waits for health 200 from a worker; returns that worker's pid."""
    wait_for(url + "/api/health/", server, log, timeout=timeout, interval=0.2, until=lambda: children(server.pid))
    return children(server.pid)[0]


def test_rows_and_files_after_workers_killed_during_uploads(tmp_path, test_model_path):
    media = tmp_path / "media"
    db = tmp_path / "db.sqlite3"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = live_env(tmp_path, model=test_model_path, port=port, secret="fault-test-only-" + "x" * 40,
                   SIGVER_AUDIT_STORE_IMAGES="1", SIGVER_MAX_REFERENCES_PER_PROFILE="1000",
                   SIGVER_THROTTLE_ANON="100000/min", SIGVER_THROTTLE_USER="100000/min",
                   SIGVER_THROTTLE_AUTH="100000/min", GUNICORN_WORKERS="1", GUNICORN_THREADS="4",
                   GUNICORN_ACCESSLOG="", PYTHONUNBUFFERED="1")
    migrate(env)
    log = tmp_path / "gunicorn.log"
    server = start(env, log)
    try:
        worker = wait_ready(url, server, log)
        body = requests.post(f"{url}/api/auth/register/", json={"username": "clerk", "password": "correct horse 12"},
                             timeout=30).json()
        auth = {"Authorization": f"Token {body['token']}"}
        profile = requests.post(f"{url}/api/profiles/", json={"name": "P"}, headers=auth, timeout=30).json()["id"]
        seeds = iter(range(1000, 100000))
        lock = threading.Lock()
        stop_clients = threading.Event()

        def client() -> None:
            while not stop_clients.is_set():
                with lock:
                    seed = next(seeds)
                try:
                    if seed % 3:
                        files = [("image", (f"r{seed}.png", png(seed), "image/png"))]
                        requests.post(f"{url}/api/profiles/{profile}/references/", files=files, headers=auth,
                                      timeout=30)
                    else:
                        requests.post(f"{url}/api/profiles/{profile}/verify/", headers=auth, timeout=30,
                                      files={"questioned": (f"q{seed}.png", png(seed), "image/png")})
                except requests.RequestException:
                    time.sleep(0.05)  # the worker was killed under this request: the next one goes to its successor

        threads = [threading.Thread(target=client, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        rng = random.Random(29)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))  # uploads in flight
            os.kill(worker, signal.SIGKILL)
            worker = wait_ready(url, server, log)
        stop_clients.set()
        for thread in threads:
            thread.join(timeout=60)
        stop(server)
        server = start(env, log)  # a restart: its worker's start-up sweep runs
        wait_ready(url, server, log)
    finally:
        stop(server)

    with sqlite3.connect(db) as conn:
        rows = {name for (name,) in conn.execute("SELECT image FROM signatures_reference")}
        records = [files for (files,) in conn.execute("SELECT image_files FROM audit_verificationrecord")]
    conn.close()
    audit_rows = {name for files in records for name in json.loads(files or "[]")}
    stored = {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()}
    references = {n for n in stored if n.startswith("references/")}
    audit = {n for n in stored if n.startswith("audit/")}
    print(f"after {KILLS} kills: {len(rows)} reference rows / {len(references)} files; "
          f"{len(audit_rows)} case-record images / {len(audit)} files")
    assert rows and audit_rows, "no upload was recorded: the test did not exercise anything"
    assert rows - references == set(), "rows without their file"
    assert references - rows == set(), "reference files without a row"
    assert audit_rows - audit == set() and audit - audit_rows == set()
    assert not [n for n in stored if n.rsplit("/", 1)[-1].startswith(".")], "temporary files left"
    assert {stat.S_IMODE((media / n).stat().st_mode) for n in stored} == {0o640}
