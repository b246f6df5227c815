"""`make run` (scripts/run.sh): both servers start, the printed URLs answer, and a stop ends both with a
short message and exit code 0.

Two ways to stop: Ctrl-C typed on a terminal running `make run` (a pseudo-terminal here: the terminal driver
sends SIGINT to its foreground process group, exactly as for a person), and SIGTERM from a supervisor to the
script without a terminal. Each start loads a real model and Streamlit (about 10-60 s on a busy machine), on
free ports with a temporary SQLite database, media folder and data folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path

import pytest

from sigml.testing import free_port

REPO = Path(__file__).resolve().parents[3]
VENV_PY = Path(sys.executable)
START_TIMEOUT_S = 300
READY_LINE = "Ctrl-C stops both."


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def a_model() -> Path:
    """The shipped model, else any model of trained_model_parameters/ with its card."""
    folder = REPO / "trained_model_parameters"
    candidates = [folder / "siamese_resnet18.safetensors", *sorted(folder.glob("*.safetensors"))]
    for path in candidates:
        if path.is_file() and path.with_suffix(".json").is_file():
            return path
    pytest.skip("no model with its card in trained_model_parameters/")


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "data").mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SIGVER_", "DJANGO_"))},
        "PY": str(VENV_PY), "API_PORT": str(free_port()), "UI_PORT": str(free_port()),
        "SIGVER_MODEL_PATH": str(a_model()), "SIGVER_DATA_DIR": str(tmp_path / "data"),
        "SIGVER_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "SIGVER_MEDIA_ROOT": str(tmp_path / "media"),
        "SIGVER_TORCH_THREADS": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }


def read_until(read, pattern: str, timeout: float, proc: subprocess.Popen) -> str:
    """Everything `read()` gives until `pattern` appears (or the process ends, or the time is up)."""
    out = ""
    deadline = time.monotonic() + timeout
    while pattern not in out and time.monotonic() < deadline:
        chunk = read(1.0)
        if chunk:
            out += chunk
        elif proc.poll() is not None:
            out += read(0.2) or ""
            break
    return out


def check_urls(output: str, env: dict[str, str]) -> None:
    urls = dict(re.findall(r"^\s+(API|API docs|Interface):\s+(\S+)$", output, flags=re.M))
    assert urls == {
        "API": f"http://127.0.0.1:{env['API_PORT']}/api/",
        "API docs": f"http://127.0.0.1:{env['API_PORT']}/api/docs/",
        "Interface": f"http://127.0.0.1:{env['UI_PORT']}/",
    }, output
    with urllib.request.urlopen(urls["API"], timeout=10) as resp:
        assert "health" in json.load(resp)["links"]
    for url in (urls["API docs"], urls["Interface"]):
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"<html" in resp.read().lower()


def check_stopped(proc: subprocess.Popen, after_stop: str, env: dict[str, str]) -> None:
    assert proc.returncode == 0, after_stop
    lines = [line for line in after_stop.splitlines() if line.strip()]
    assert len(lines) <= 8, after_stop  # short: no recursive trap printing "Stopping..." over and over
    assert after_stop.count("Stopping") <= 3, after_stop  # ours, and Streamlit's own once
    assert "Stopped." in after_stop
    assert "Segmentation fault" not in after_stop and "Interrupt" not in after_stop
    for port in (env["API_PORT"], env["UI_PORT"]):
        assert port_free(int(port)), f"port {port} still answers"


def test_make_run_stops_on_ctrl_c_in_a_terminal(run_env):
    """`make run` on a (pseudo-)terminal, then Ctrl-C typed: exit code 0, both ports free, a short message."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # a new session whose controlling terminal is the pty, like a login shell
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    # -o: the virtual environment is there already (no re-install inside a test)
    cmd = ["make", "--no-print-directory", "-o", ".venv/.run-installed", "run",
           f"PY={VENV_PY}", f"API_PORT={run_env['API_PORT']}", f"UI_PORT={run_env['UI_PORT']}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=run_env, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling_terminal, close_fds=True)
    os.close(slave)

    def read(timeout: float) -> str:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            return ""
        try:
            return os.read(master, 65536).decode(errors="replace").replace("\r\n", "\n")
        except OSError:  # the other end closed
            return ""

    try:
        output = read_until(read, READY_LINE, START_TIMEOUT_S, proc)
        assert READY_LINE in output, output[-4000:]
        check_urls(output, run_env)
        os.write(master, b"\x03")  # Ctrl-C
        after = read_until(read, "Stopped.", 60, proc)
        proc.wait(timeout=60)
        after += read(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    check_stopped(proc, after, run_env)


def test_run_script_stops_on_sigterm_without_a_terminal(run_env):
    """A supervisor (no terminal) sends SIGTERM to the script: both servers end, exit code 0."""
    proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=REPO, env=run_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    fd = proc.stdout.fileno()

    def read(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 65536).decode(errors="replace") if ready else ""

    try:
        output = read_until(read, READY_LINE, START_TIMEOUT_S, proc)
        assert READY_LINE in output, output[-4000:]
        check_urls(output, run_env)
        proc.send_signal(signal.SIGTERM)
        after = read_until(read, "Stopped.", 60, proc)
        proc.wait(timeout=60)
        after += read(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    check_stopped(proc, after, run_env)
