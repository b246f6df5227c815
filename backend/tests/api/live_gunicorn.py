"""The production command (`gunicorn -c config/gunicorn.py config.wsgi`) as the live tests start it: an environment
of their own (nothing inherited from DJANGO_/SIGVER_/GUNICORN_ variables or DATABASE_URL), migrate, start, wait for an
answer, stop. One copy for backend/tests/api/test_api_live.py, backend/tests/reliability/test_live_bounded.py and
test_kill_during_upload.py, so that a change to how the server starts is made once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

BACKEND = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"

needs_gunicorn = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed next to this Python")


def live_env(folder: Path, *, model: Path, port: int, secret: str, **settings: str) -> dict[str, str]:
    """This process's environment without the project's variables, plus a SQLite file, media and (empty) data folder
    under `folder`, the test model, one model thread, the loopback port; then `settings` (e.g. GUNICORN_THREADS="4")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SIGVER_", "GUNICORN_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SECRET_KEY": secret, "SIGVER_MODEL_PATH": str(model),
        "SIGVER_SQLITE_PATH": str(folder / "db.sqlite3"), "SIGVER_MEDIA_ROOT": str(folder / "media"),
        "SIGVER_DATA_DIR": str(folder / "no-data"), "SIGVER_TORCH_THREADS": "1", "GUNICORN_BIND": f"127.0.0.1:{port}",
    })
    env.update(settings)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BACKEND, env=env, check=True,
                   capture_output=True, timeout=300)


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    """gunicorn in its own session (a test's signals reach only it), its output appended to `log`."""
    with log.open("a") as out:
        return subprocess.Popen([str(GUNICORN), "-c", "config/gunicorn.py", "config.wsgi"], cwd=BACKEND, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(url: str, process: subprocess.Popen, log: Path, *, timeout: float = 180, interval: float = 0.5,
             request_timeout: float = 10, until: Callable[[], object] = lambda: True) -> None:
    """Until `url` answers 200 and `until()` is true; fails the test with the log's tail when `process` exits or
    `timeout` seconds pass. A refused, cut or timed-out request is a server still binding or loading the model."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=request_timeout).status_code == 200 and until():
                return
        except requests.RequestException:  # incl. a connection cut by a killed worker
            pass
        time.sleep(interval)
    pytest.fail(f"{url} did not answer in time:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful stop), SIGKILL after 40 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
