"""Load and faults against the production server (gunicorn on loopback, 2 workers, SQLite in WAL):
bench/load_mixed.py in its short CI mode (mixed load + end check + a write burst for SQLite lock
contention), a worker SIGKILLed mid-load, the database taken away and brought back, a missing or
corrupt model at start-up; and the sweep of files left by a killed upload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from api_helpers import png
from sigml.modelcard import card_path_for

REPO = Path(__file__).resolve().parents[3]
BACKEND = REPO / "backend"
VENV_BIN = Path(sys.executable).parent
LOAD = REPO / "bench" / "load_mixed.py"
GUNICORN = VENV_BIN / "gunicorn"

needs_gunicorn = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed next to this Python")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SIGVER_", "GUNICORN_", "DATABASE_URL"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_load(tmp_path: Path, model: Path, *args: str) -> dict:
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(LOAD), "--model", str(model), "--json", str(out), *args],
                          cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=400)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    print(done.stdout.splitlines()[-1])
    assert done.returncode == (0 if report["ok"] else 1)
    return report


@needs_gunicorn
def test_mixed_load_short_mode(tmp_path, test_model_path):
    report = run_load(tmp_path, test_model_path, "--duration", "15", "--write-burst", "16", "--burst-rounds", "10")
    assert report["ok"], json.dumps(report, indent=1)[:4000]
    assert report["status_5xx"] == 0 and report["connection_errors"] == 0 and not report["unexpected"]
    assert set(report["by_operation"]) >= {"verify", "enroll", "profile_verify", "delete_reference"}
    check = report["end_check"]
    assert check["references_told_created"] > 0 and check["references_told_deleted"] > 0
    assert check["rows"] == check["references_alive_expected"] == check["files"]
    assert not check["problems"] and not check["orphan_files"] and not check["rows_without_file"]
    burst = report["write_burst"]  # 16 threads writing at once: SQLite busy, yet no request fails
    assert burst["failed"] == 0 and burst["requests"] == 16 * 10 * 3


@needs_gunicorn
def test_a_worker_killed_mid_load(tmp_path, test_model_path):
    report = run_load(tmp_path, test_model_path, "--duration", "10", "--kill-worker-at", "4")
    assert report["ok"], json.dumps(report, indent=1)[:4000]
    assert report["killed_worker"]["pid"] not in report["replacement_worker"]
    assert report["workers_after"] == 2  # the master started a new one
    assert report["status_5xx"] == 0
    # only requests already handed to the killed worker failed (at most one per client), none sent later
    assert report["failed_requests_sent_after_kill"] == 0 and report["connection_errors"] <= 8
    after_kill = sum(op["n"] for op in report["by_operation"].values())
    assert after_kill > report["connection_errors"]  # the others kept serving
    check = report["end_check"]
    assert not check["problems"] and not check["rows_without_file"]
    assert check["rows_no_client_was_told_about"] <= check["enroll_outcomes_unknown"]
    assert not check.get("orphan_files_after_sweep", check["orphan_files"])


# --- the database goes away and comes back ----------------------------------------------------------

@needs_gunicorn
def test_database_unavailable_is_a_503_and_recovers(tmp_path, test_model_path):
    sys.path.insert(0, str(REPO / "bench"))
    from _common import ApiServer

    db_dir = tmp_path / "dbdir"
    db_dir.mkdir()
    server = ApiServer(test_model_path, workers=1, threads=2, torch_threads=1,
                       env={"SIGVER_SQLITE_PATH": str(db_dir / "db.sqlite3")})
    saved = os.environ.pop("DATABASE_URL", None)
    try:
        server.start()
        base = f"http://{server.host}:{server.port}"
        registered = requests.post(f"{base}/api/auth/register/", json={"username": "dbfault", "password": "a long db passphrase"}, timeout=30)
        auth = {"Authorization": f"Token {registered.json()['token']}"}
        assert requests.get(f"{base}/api/profiles/", headers=auth, timeout=30).status_code == 200

        db_dir.rename(tmp_path / "away")  # the database file (and its WAL) vanish
        try:
            for method, path in (("get", "/api/profiles/"), ("post", "/api/profiles/"), ("post", "/api/auth/token/")):
                response = getattr(requests, method)(f"{base}{path}", headers=auth, timeout=30,
                                                     json={"name": "x", "username": "dbfault", "password": "a long db passphrase"})
                assert response.status_code == 503, (path, response.text)
                assert response.json()["error"] == {"code": "database_unavailable",
                                                    "message": "The database is not available.", "details": {}}
                assert "Traceback" not in response.text
            health = requests.get(f"{base}/api/health/", timeout=30)
            assert health.status_code == 503 and health.json()["database"] == "unavailable"
            # verifying two images needs no database: still served
            files = {"reference": ("a.png", png(1)), "questioned": ("b.png", png(2))}
            assert requests.post(f"{base}/api/verify/", files=files, timeout=60).status_code == 200
        finally:
            (tmp_path / "away").rename(db_dir)
        assert requests.get(f"{base}/api/health/", timeout=30).status_code == 200
        assert requests.get(f"{base}/api/profiles/", headers=auth, timeout=30).status_code == 200
        assert requests.post(f"{base}/api/profiles/", json={"name": "back"}, headers=auth, timeout=30).status_code == 201
    finally:
        server.stop()
        if saved is not None:
            os.environ["DATABASE_URL"] = saved


# --- the model at start-up --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_models(test_model_path, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-models")
    garbage = folder / "garbage.safetensors"
    garbage.write_bytes(b"\x00not a model" * 100)
    shutil.copy(card_path_for(test_model_path), card_path_for(garbage))
    return {"missing": folder / "missing.safetensors", "corrupt": garbage}


def start_env(model: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(DJANGO_SECRET_KEY="s" * 50, SIGVER_MODEL_PATH=str(model), SIGVER_SQLITE_PATH=str(tmp_path / "db.sqlite3"),
                     SIGVER_MEDIA_ROOT=str(tmp_path / "media"), SIGVER_TORCH_THREADS="1", **extra)


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_manage_py_check_deploy_fails_on_a_bad_model(bad_models, tmp_path, case):
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=BACKEND,
                          env=start_env(bad_models[case], tmp_path), capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    assert "sigver.E001" in done.stderr and str(bad_models[case]) in done.stderr


@needs_gunicorn
def test_gunicorn_with_a_missing_model_exits_non_zero(bad_models, tmp_path):
    started = time.monotonic()
    done = subprocess.run([str(GUNICORN), "-c", "config/gunicorn.py", "config.wsgi"], cwd=BACKEND,
                          env=start_env(bad_models["missing"], tmp_path, GUNICORN_BIND="127.0.0.1:0", GUNICORN_ACCESSLOG=""),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode != 0  # gunicorn: "Worker failed to boot" (3), it does not keep restarting workers
    assert f"the model could not be loaded from {bad_models['missing']}" in done.stderr
    assert time.monotonic() - started < 120


# --- files left by a killed upload ------------------------------------------------------------------

def test_sweep_removes_files_without_a_row_but_not_those_in_flight(user_client, settings):
    """No age rule: a file no row names goes at once, in references/ and audit/, with a killed writer's temporary
    file; a file a live process journaled (an upload in flight in another worker) stays."""
    from config.storage import _inflight
    from signatures.models import Reference
    from signatures.services import stored_files_sweep

    api, _ = user_client("sweeper")
    profile = api.post("/api/profiles/", {"name": "P"}, format="json").json()["id"]
    upload = SimpleUploadedFile("r.png", png(1), "image/png")
    assert api.post(f"/api/profiles/{profile}/references/", {"image": upload}, format="multipart").status_code == 201
    media = Path(settings.MEDIA_ROOT)
    kept = media / Reference.objects.get().image.name
    (media / "audit").mkdir(exist_ok=True)
    orphan, audit_orphan = media / "references" / ("a" * 32 + ".png"), media / "audit" / ("b" * 32 + ".img")
    dead_tmp = media / "references" / f".{'c' * 32}.png.999999-deadbeef0000.tmp"  # its writer's lock is gone
    in_flight = "references/" + "d" * 32 + ".png"
    _inflight.add(in_flight)  # this live process is about to write it
    for path in (orphan, audit_orphan, dead_tmp, media / in_flight):
        path.write_bytes(png(2)[:100])
    expected = sorted(["references/" + orphan.name, "audit/" + audit_orphan.name, "references/" + dead_tmp.name])
    assert sorted(stored_files_sweep(dry_run=True)) == expected and orphan.exists()
    assert sorted(stored_files_sweep()) == expected
    assert not orphan.exists() and not audit_orphan.exists() and not dead_tmp.exists()
    assert kept.exists() and (media / in_flight).exists() and Reference.objects.count() == 1


def test_a_killed_process_journal_no_longer_protects_its_files(settings, db):
    """A dead process's lock is free (the kernel dropped its flock): its journaled names are swept."""
    from config.storage import inflight_root
    from signatures.services import stored_files_sweep

    media = Path(settings.MEDIA_ROOT)
    (media / "references").mkdir(parents=True, exist_ok=True)
    inflight = inflight_root()
    inflight.mkdir(parents=True, exist_ok=True)
    (inflight / "1-dead.lock").write_bytes(b"")
    name = "references/" + "e" * 32 + ".png"
    (inflight / "1-dead.journal").write_text(f"{int(time.time())} {name}\n")
    (media / name).write_bytes(b"x")
    assert stored_files_sweep() == [name]
    assert not (inflight / "1-dead.lock").exists() and not (inflight / "1-dead.journal").exists()


def test_sweep_command(settings, tmp_path, capsys, db):
    from django.core.management import call_command

    folder = Path(settings.MEDIA_ROOT) / "references"
    folder.mkdir(parents=True)
    (folder / ("c" * 32 + ".png")).write_bytes(b"x")
    call_command("sweep_reference_files", "--dry-run")
    assert "1 orphaned file(s) found" in capsys.readouterr().out
    call_command("sweep_reference_files")
    assert "1 orphaned file(s) deleted" in capsys.readouterr().out
    assert not any(folder.iterdir())