"""The real backend (Django, backend/) as a child process, for the interface tests.

`LiveBackend(folder).start()` prepares everything in `folder` and starts `manage.py runserver` on a free
loopback port:

- a small untrained model made by `sigml.testing.make_test_model` (in a subprocess: the test process
  never imports torch or sigml), its card completed with illustrative metrics, and two plots;
- an SQLite database, migrated;
- a synthetic dataset `DEMO` in the `generic` layout (`<writer>/genuine/*.png`, `<writer>/forged/*.png`)
  drawn with PIL, and its split file (`image_pairs`-style `DEMO/splits.csv`).

The untrained network still separates the drawn signatures: two samples of one drawn "writer" are
about 0.03-0.06 apart, two different drawings about 0.09-0.13, so the card's threshold is set to
TEST_THRESHOLD and the verdicts of the tests' pairs are meaningful.

`LiveBackend(folder, reuse=other, model_loaded=False, throttle_anon="1/min")` starts a second server on the
first one's database and data, with a missing model and strict throttles: real 503s and 429s.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from PIL import Image, ImageDraw

from fake_backend import free_port, make_signature

REPO_DIR = Path(__file__).resolve().parents[2]
BACKEND_DIR = REPO_DIR / "backend"
TEST_THRESHOLD = 0.075
DATASET = "DEMO"
WRITERS = [str(w) for w in range(1, 7)]
SPLIT_OF_WRITER = {"1": "train", "2": "train", "3": "validation", "4": "validation", "5": "test", "6": "test"}
N_GENUINE, N_FORGED = 4, 3
START_TIMEOUT_S = 180

# One subprocess: make the model (torch) and migrate the database (Django), so torch is imported once.
SETUP_SCRIPT = """
import json, os, sys
from pathlib import Path
from sigml.testing import make_test_model
folder, threshold = Path(sys.argv[1]), float(sys.argv[2])
path = make_test_model(folder / "model", threshold=threshold)
print(json.dumps({"model": str(path)}))
import django
from django.core.management import call_command
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
call_command("migrate", interactive=False, verbosity=0)
"""


def draw_plot(title: str, curve: list[tuple[float, float]]) -> bytes:
    """A small line plot (for the plots the model page shows), drawn with PIL."""
    w, h, m = 420, 320, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((m, m, w - m, h - m), outline="black")
    d.line([(m, h - m), (w - m, m)], fill="#bbbbbb", width=1)
    pts = [(m + x * (w - 2 * m), h - m - y * (h - 2 * m)) for x, y in curve]
    d.line(pts, fill="#1f77b4", width=3)
    d.text((m, 12), title, fill="black")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def write_dataset(data_dir: Path, splits_dir: Path) -> None:
    root = data_dir / DATASET
    for writer in WRITERS:
        w = int(writer)
        for kind, n in (("genuine", N_GENUINE), ("forged", N_FORGED)):
            folder = root / writer / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(1, n + 1):
                # a forger imitating writer w draws other strokes: another seed
                seed = w if kind == "genuine" else 100 + w * 10 + i
                (folder / f"{writer}_{i}.png").write_bytes(make_signature(seed, variant=i))
    (splits_dir / DATASET).mkdir(parents=True, exist_ok=True)
    (splits_dir / DATASET / "splits.csv").write_text(
        "dataset,writer,split\n" + "".join(f"{DATASET},{w},{s}\n" for w, s in SPLIT_OF_WRITER.items())
    )


def complete_model_card(model_path: Path) -> None:
    """The test model's card has no metrics: add illustrative ones, so the Model page has a table."""
    card_path = model_path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    figures = {"eer": 0.12, "auc": 0.94, "accuracy": 0.88, "far": 0.11, "frr": 0.13, "threshold": TEST_THRESHOLD,
               "n_genuine": 120, "n_forged": 240}
    card["metrics"] = {"pairwise": figures, "reference_based": {**figures, "eer": 0.08, "k": 5}}
    card["data"] = {
        "protocol": "Illustrative figures of the interface tests' untrained model (not a real evaluation).",
        "sources": [{"dataset": DATASET, "writers": len(WRITERS), "layout": "generic"}],
    }
    card["training"] = {"epochs_run": 0, "best_epoch": 0}
    card_path.write_text(json.dumps(card, indent=2))


class LiveBackend:
    def __init__(self, folder: Path, *, reuse: "LiveBackend | None" = None, model_loaded: bool = True,
                 throttle_anon: str = "100000/min", throttle_user: str = "100000/min",
                 throttle_auth: str = "100000/min") -> None:
        self.folder = Path(folder)
        self.reuse = reuse
        self.model_loaded = model_loaded
        self.throttles = {"SIGVER_THROTTLE_ANON": throttle_anon, "SIGVER_THROTTLE_USER": throttle_user,
                          "SIGVER_THROTTLE_AUTH": throttle_auth}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.folder / "server.log"
        base = reuse.folder if reuse else self.folder
        self.db_path = base / "db.sqlite3"
        self.data_dir = base / "data"
        self.splits_dir = base / "image_pairs"
        self.plots_dir = base / "plots"
        self.media_dir = base / "media"
        self.model_path: Path = reuse.model_path if reuse else base / "model" / "test_model.safetensors"

    # ------------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGVER_", "DJANGO_", "DATABASE_URL"))}
        env.update({
            "PYTHONPATH": str(BACKEND_DIR),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "interface-tests-only-" + "x" * 40,
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "SIGVER_SQLITE_PATH": str(self.db_path),
            "SIGVER_MEDIA_ROOT": str(self.media_dir),
            "SIGVER_DATA_DIR": str(self.data_dir),
            "SIGVER_SPLITS_DIR": str(self.splits_dir),
            "SIGVER_PLOTS_DIR": str(self.plots_dir),
            "SIGVER_MODEL_PATH": str(self.model_path if self.model_loaded else self.folder / "missing.safetensors"),
            "SIGVER_LOAD_MODEL": "1" if self.model_loaded else "0",
            "SIGVER_TORCH_THREADS": "1",  # the CPU is shared with whatever else runs
            "OMP_NUM_THREADS": "1",
            **self.throttles,
        })
        return env

    def prepare(self) -> None:
        """Model, database, dataset and plots (only for a backend that does not reuse another's)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.reuse:
            return
        for d in (self.data_dir, self.splits_dir, self.plots_dir, self.media_dir):
            d.mkdir(parents=True, exist_ok=True)
        write_dataset(self.data_dir, self.splits_dir)
        roc = [(x / 20, min(1.0, (x / 20) ** 0.25)) for x in range(21)]
        det = [(x / 20, max(0.0, 1 - (x / 20) ** 0.3)) for x in range(21)]
        # named as `sigml evaluate --plots` names its plots (one image per protocol)
        (self.plots_dir / "pairwise.png").write_bytes(draw_plot("ROC (test model)", roc))
        (self.plots_dir / "reference_k10.png").write_bytes(draw_plot("DET (test model)", det))
        done = subprocess.run(
            [sys.executable, "-c", SETUP_SCRIPT, str(self.folder), str(TEST_THRESHOLD)],
            cwd=BACKEND_DIR, env={**self.env(), "SIGVER_LOAD_MODEL": "0"},  # migrate needs no model
            capture_output=True, text=True, timeout=START_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(f"backend set-up failed:\n{done.stdout}\n{done.stderr}")
        self.model_path = Path(json.loads(done.stdout.strip().splitlines()[-1])["model"])
        complete_model_card(self.model_path)

    def start(self) -> "LiveBackend":
        self.prepare()
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=BACKEND_DIR, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)  # should the test session end without its fixture teardown
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the backend exited early:\n{self.log()}")
            try:
                resp = requests.get(f"{self.url}/api/health/", timeout=2)
                if resp.status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the backend did not answer /api/health/ in {START_TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.25)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> "LiveBackend":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
