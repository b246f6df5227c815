"""A hostile corpus from 4 concurrent clients against the production setup, for a bounded time.

Starts `gunicorn -c python:config.gunicorn config.wsgi` (bench/_common.ApiServer: 1 worker x 4 threads by
default, DEBUG off, throttling raised out of the way) and, with --proxy, nginx in front of it
(scripts/proxy.sh, deploy/nginx/sigver.conf). Each client sends, in turn, for --duration seconds:

  worst accepted image   4000x4000 RGBA PNG (16 MP, the largest the API accepts) as the questioned image
  worst 1-bit            4000x4000 1-bit PNG
  reference upload       three 16 MP images to a profile (its references are deleted again)
  1x39,990,000 PNG       the 77 KB file that took a worker from 1.0 to 2.5 GB (now 413 on its header)
  40 MP RGBA PNG         over the pixel limit (413 on its header)
  scan-bomb JPEG         a progressive JPEG with 20,000 empty scans (413 before decoding)
  page-bomb TIFF         a signature followed by 20,000 chained 1x1 pages (first page only: 200)
  La TIFF, WebP+PCD      gray + associated alpha; a WebP with PhotoCD's signature inside (200)
  nested JSON            1,000 levels on the token endpoint (400)
  bad charset            text/plain; charset=zlib with a query string (415)

while a fifth thread asks /api/health/ every 0.5 s and --slow-clients connections send a request body
one byte every 2 s. Printed: requests and statuses per kind, 5xx count, health latency (p50, max,
failures), the worker's peak resident memory (VmHWM) and its memory after the run, CPU seconds per
request (server processes' user+system time over the run / requests). Exit status 1 on any 5xx, a
worker peak over --rss-limit-mb, or a failed health check.

    .venv/bin/python bench/hostile_load.py                       # 60 s, 4 clients, gunicorn alone
    .venv/bin/python bench/hostile_load.py --proxy --slow-clients 12 --duration 30
    .venv/bin/python bench/hostile_load.py --slow-clients 12 --duration 20 --only health   # slow clients only
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from _common import ROOT, ApiServer, Client, add_common_args, multipart, percentiles_ms, resolve_model

sys.path.insert(0, str(ROOT / "backend" / "tests" / "reliability"))
from hostile_inputs import (_save, jpeg_scan_bomb, png_with_header, tiff_gray_associated_alpha,  # noqa: E402
                            tiff_page_bomb, webp_with_pcd_signature)
from sigml.testing import free_port, image_bytes, signature_image  # noqa: E402


def worst_image(seed: int, mode: str = "RGBA") -> bytes:
    """A 4000x4000 signature-like image (strokes on paper), 16 MP: the largest the API accepts."""
    rng = np.random.default_rng(seed)
    canvas = np.full((4000, 4000), 255, np.uint8)
    for _ in range(60):
        y, x = rng.integers(200, 3800, size=2)
        canvas[y : y + 12, max(0, x - 600) : x + 600] = 0
    gray = Image.fromarray(canvas)
    if mode == "1":
        return _save(gray.convert("1"), "PNG")
    rgba = Image.merge("RGBA", (gray, gray, gray, Image.eval(gray, lambda v: 255 - v // 2)))
    return _save(rgba, "PNG", compress_level=1)


def corpus() -> list[tuple[str, str, str, bytes, str, dict]]:
    """(kind, method, path, body, content type, extra headers); {profile} is filled in per client."""
    worst = {"rgba": worst_image(0), "bilevel": worst_image(0, "1")}
    small = image_bytes(signature_image(1, size=(300, 120)), "PNG")
    sig = signature_image(2, size=(300, 120))

    def verify(name: str, data: bytes) -> tuple[bytes, str]:
        return multipart([("reference", "r.png", small), ("questioned", name, data)])

    items = []
    for kind, name, data in [
        ("worst accepted RGBA 16 MP", "q.png", worst["rgba"]),
        ("worst accepted 1-bit 16 MP", "q.png", worst["bilevel"]),
        ("1x39,990,000 PNG", "q.png", png_with_header(1, 39_990_000)),
        ("40 MP RGBA header", "q.png", png_with_header(8000, 5000, color=6)),
        ("scan-bomb JPEG", "q.jpg", jpeg_scan_bomb(20_000)),
        ("page-bomb TIFF", "q.tif", tiff_page_bomb(sig, 20_000)),
        ("La TIFF", "q.tif", tiff_gray_associated_alpha(sig)),
        ("WebP with PCD signature", "q.webp", webp_with_pcd_signature(sig)),
    ]:
        body, ctype = verify(name, data)
        items.append((kind, "POST", "/api/verify/", body, ctype, {}))
    body, ctype = multipart([("images", f"{k}.png", worst_image(1 + k)) for k in range(3)])  # 3 different images
    items.append(("reference upload 3 x 16 MP", "POST", "/api/profiles/{profile}/references/", body, ctype, {}))
    items.append(("nested JSON", "POST", "/api/auth/token/", ("[" * 1000 + "]" * 1000).encode(), "application/json", {}))
    items.append(("bad charset", "GET", "/api/health/?a=1", b"", "text/plain; charset=zlib", {}))
    return items


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


def slow_client(host: str, port: int, stop: threading.Event) -> None:
    try:
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(b"POST /api/verify/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                         b"Content-Length: 1000000\r\n\r\n")
            while not stop.wait(2.0):
                sock.sendall(b"-")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default 1, as the README runs it)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--proxy", action="store_true", help="put nginx (scripts/proxy.sh) in front of gunicorn")
    parser.add_argument("--slow-clients", type=int, default=0, help="connections sending a byte every 2 s")
    parser.add_argument("--only", choices=["all", "health"], default="all",
                        help="health: no hostile corpus, only health checks (with --slow-clients)")
    parser.add_argument("--rss-limit-mb", type=float, default=1536.0, help="fail if a worker's peak is above (1.5 GB)")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)

    model = resolve_model(args.model)
    items = corpus() if args.only == "all" else []
    env = {"SIGVER_TORCH_THREADS": "1", "SIGVER_NUM_PROXIES": "1" if args.proxy else "0"}
    server = ApiServer(model, workers=args.workers, threads=args.threads, torch_threads=1, env=env).start()
    proxy = None
    host, port = server.host, server.port
    try:
        if args.proxy:
            port = free_port()
            rundir = tempfile.mkdtemp(prefix="sigver-proxy-")
            proxy = subprocess.Popen(["bash", str(ROOT / "scripts" / "proxy.sh"), f"{host}:{port}", f"{server.host}:{server.port}"],
                                     env={**os.environ, "SIGVER_PROXY_DIR": rundir}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            for _ in range(100):
                try:
                    if Client(host, port, timeout=5).request("GET", "/api/health/")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
        setup = Client(host, port)
        status, body = setup.json("POST", "/api/auth/register/", {"username": "bench", "password": "a-long-passphrase-1"})
        token = body["token"]
        auth = {"Authorization": f"Token {token}"}
        profiles = [setup.json("POST", "/api/profiles/", {"name": f"P{i}"}, auth)[1]["id"] for i in range(args.clients)]

        pids = [server.proc.pid, *server.worker_pids()]
        rss_before = server.rss_mb()["workers"]
        cpu_before = cpu_seconds(pids)
        statuses: dict[str, Counter] = defaultdict(Counter)
        latencies: dict[str, list[float]] = defaultdict(list)
        health: list[float] = []
        health_failures = [0]
        stop = threading.Event()
        lock = threading.Lock()

        def client(index: int) -> None:
            conn = Client(host, port, timeout=120)
            i = index
            while not stop.is_set() and items:
                kind, method, path, payload, ctype, headers = items[i % len(items)]
                i += 1
                path = path.format(profile=profiles[index])
                started = time.monotonic()
                try:
                    code, data = conn.request(method, path, payload or None, ctype, {**auth, **headers})
                except OSError:
                    code, data = 0, b""
                with lock:
                    statuses[kind][code] += 1
                    latencies[kind].append(time.monotonic() - started)
                if kind.startswith("reference upload") and code == 201:
                    for ref in json.loads(data)["results"]:
                        conn.request("DELETE", f"/api/profiles/{profiles[index]}/references/{ref['id']}/", None, None, auth)

        def checker() -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    ok = Client(host, port, timeout=10).request("GET", "/api/health/")[0] == 200
                except OSError:
                    ok = False
                with lock:
                    if ok:
                        health.append(time.monotonic() - started)
                    else:
                        health_failures[0] += 1
                stop.wait(0.5)

        slow = [threading.Thread(target=slow_client, args=(host, port, stop), daemon=True) for _ in range(args.slow_clients)]
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)] + [threading.Thread(target=checker)]
        for t in slow + threads:
            t.start()
        time.sleep(args.duration)
        stop.set()
        for t in threads:
            t.join(180)
        cpu = cpu_seconds([server.proc.pid, *server.worker_pids()]) - cpu_before
        time.sleep(1.0)
        peak = server.peak_mb()
        after = server.rss_mb()["workers"]
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(30)
        server.stop()

    requests_sent = sum(sum(c.values()) for c in statuses.values())
    five_xx = sum(n for c in statuses.values() for s, n in c.items() if s >= 500 or s == 0)
    report = {
        "setup": f"{server.describe()}{' behind nginx' if args.proxy else ''}; {args.clients} clients, "
                 f"{args.slow_clients} slow clients, {args.duration:.0f} s",
        "by_kind": {k: {"statuses": dict(c), "p50_ms": percentiles_ms(latencies[k]).get("p50"),
                        "max_ms": max(latencies[k]) * 1000} for k, c in statuses.items()},
        "requests": requests_sent, "status_5xx_or_no_answer": five_xx,
        "health": {"checks": len(health), "failures": health_failures[0], **({"p50_ms": percentiles_ms(health)["p50"],
                   "max_ms": max(health) * 1000} if health else {})},
        "worker_rss_mb": {"before": rss_before, "peak": peak["workers"], "after": after},
        "cpu_seconds_per_request": cpu / requests_sent if requests_sent else None, "cpu_seconds": cpu,
    }
    print(report["setup"])
    for kind, row in report["by_kind"].items():
        print(f"  {kind:<28} {row['statuses']}  p50 {row['p50_ms']:.0f} ms, max {row['max_ms']:.0f} ms")
    h = report["health"]
    print(f"health: {h['checks']} answered, {h['failures']} failed or timed out (10 s)"
          + (f", p50 {h['p50_ms']:.0f} ms, max {h['max_ms']:.0f} ms" if health else ""))
    print(f"worker RSS: before {[round(x) for x in rss_before]} MB, peak {[round(x) for x in peak['workers']]} MB, "
          f"after {[round(x) for x in after]} MB")
    if requests_sent:
        print(f"{requests_sent} requests, {five_xx} x 5xx or no answer; CPU {cpu:.1f} s = "
              f"{report['cpu_seconds_per_request']:.3f} s per request")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    ok = five_xx == 0 and health_failures[0] == 0 and max(peak["workers"], default=0) <= args.rss_limit_mb
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
