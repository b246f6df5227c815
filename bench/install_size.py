"""Size and time of the environment `make run` installs (the serving requirements), in a fresh virtual environment.

    .venv/bin/python bench/install_size.py [--reqs backend/requirements-serve.txt interface/requirements.txt]
        [--keep DIR] [--top 12] [--json PATH]

Creates a new venv in a temporary folder with the same Python, runs the same `pip install -r ...` as the
Makefile's `.run-installed` target (pip's download cache disabled, so the figure includes the downloads from the
package index as a fresh machine sees them), then prints the wall time, the venv's size on disk, the largest
installed distributions, and whether torch got in (it must not: the API serves the ONNX export).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_REQS = ["backend/requirements-serve.txt", "interface/requirements.txt"]


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (links not followed, as `du --apparent-size` counts)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python*/site-packages"))


def largest_distributions(site: Path, top: int) -> list[tuple[str, int]]:
    """(name, bytes) of the biggest top-level entries of site-packages: packages with their .dist-info merged."""
    sizes: dict[str, int] = {}
    for entry in site.iterdir():
        name = entry.name.split("-")[0].lower() if entry.name.endswith((".dist-info", ".data")) else entry.name.lower()
        name = name.removesuffix(".libs").lstrip("_")
        size = tree_bytes(entry) if entry.is_dir() else entry.lstat().st_size
        sizes[name] = sizes.get(name, 0) + size
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reqs", nargs="+", default=RUN_REQS)
    p.add_argument("--keep", help="build the venv here and keep it (default: a temporary folder, removed)")
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    parent = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sigver-install-"))
    venv = parent / "venv"
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *(a for r in args.reqs for a in ("-r", str(ROOT / r)))], check=True)
        subprocess.run([*pip, "--no-deps", "-e", str(ROOT / "backend")], check=True)
        seconds = time.perf_counter() - started
        total = tree_bytes(venv)
        site = site_packages(venv)
        biggest = largest_distributions(site, args.top)
        has_torch = (site / "torch").exists()
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)

    print(f"requirements: {' '.join(args.reqs)}")
    print(f"install time (no pip cache, downloads included): {seconds:.0f} s")
    print(f"environment on disk: {total / 1e6:.0f} MB; torch installed: {'yes' if has_torch else 'no'}")
    print("| distribution | MB |")
    print("| --- | ---: |")
    for name, size in biggest:
        print(f"| {name} | {size / 1e6:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "requirements": args.reqs, "install_seconds": round(seconds, 1), "env_bytes": total,
            "torch_installed": has_torch, "largest": [{"name": n, "bytes": b} for n, b in biggest],
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
