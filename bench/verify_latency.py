"""Latency of `POST /api/verify/`, one client, one request at a time, through the production server.

    .venv/bin/python bench/verify_latency.py [--model M] [--data ../shared/datasets] [--requests 200]
        [--sizes 256,raw] [--workers 1 --threads 4 --torch-threads 2] [--quick]

Starts gunicorn (backend/config/gunicorn.py) on a free loopback port with the model, sends real CEDAR/GPDS
pairs (half genuine-genuine, half genuine-skilled): `256` = the dataset files as they are (256x256),
`raw` = ~1000x300 raw-scan versions of the same images. Prints p50/p95/p99 client-side latency per
size, the server's own `elapsed_ms` (preprocessing + forward pass), and the server's peak memory.
With `--py-spy SECONDS` it then samples the worker with py-spy while requests keep coming and prints
where the time goes (Django, upload parsing, preprocessing stages, forward pass).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from _common import (ApiServer, add_common_args, cpu_note, folded_breakdown, format_ms, image_size, load_pairs,
                     percentiles_ms, print_memory, py_spy_record, resolve_model, verify_body)


def measure(server: ApiServer, pairs, requests: int, warmup: int) -> tuple[list[float], list[float], int]:
    bodies = [verify_body(p) for p in pairs]
    client = server.client()
    latencies, server_ms, errors = [], [], 0
    for i in range(warmup + requests):
        body, ctype = bodies[i % len(bodies)]
        started = time.perf_counter()
        status, data = client.request("POST", "/api/verify/", body, ctype)
        elapsed = time.perf_counter() - started
        if i < warmup:
            continue
        if status != 200:
            errors += 1
            print(f"  error {status}: {data[:200]!r}")
            continue
        latencies.append(elapsed)
        server_ms.append(json.loads(data)["elapsed_ms"] / 1000.0)
    client.close()
    return latencies, server_ms, errors


def breakdown(server: ApiServer, pairs, seconds: float) -> None:
    """py-spy samples of the worker while one client sends requests back to back."""
    bodies = [verify_body(p) for p in pairs]
    stop = threading.Event()

    def load() -> None:
        client, i = server.client(), 0
        while not stop.is_set():
            client.request("POST", "/api/verify/", *bodies[i % len(bodies)])
            i += 1
        client.close()

    sender = threading.Thread(target=load)
    sender.start()
    with tempfile.TemporaryDirectory() as tmp:
        folded = Path(tmp) / "verify.folded"
        ok = py_spy_record(server.worker_pids()[0], seconds, folded)
        stop.set()
        sender.join()
        if ok:
            print(f"  where the time goes (py-spy, {seconds:.0f} s, share of the worker's busy samples):")
            for label, share in folded_breakdown(folded):
                print(f"    {share * 100:5.1f}%  {label}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--requests", type=int, default=200, help="timed requests per size")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--pairs", type=int, default=50, help="distinct pairs, sent in turn")
    p.add_argument("--sizes", default="256,raw", help="256 (dataset files) and/or raw (~1000x300 scans)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--py-spy", type=float, default=0, metavar="SECONDS", help="then profile the worker with py-spy")
    args = p.parse_args()
    if args.quick:
        args.requests, args.warmup, args.pairs = 10, 2, 6
    model = resolve_model(args.model)
    print(cpu_note())
    with ApiServer(model, workers=args.workers, threads=args.threads, torch_threads=args.torch_threads) as server:
        print(server.describe())
        print(f"server memory after start-up: {server.rss_mb()['total']:.0f} MB")
        for size in args.sizes.split(","):
            pairs = load_pairs(args.data, args.pairs, raw=size == "raw")
            w, h = image_size(pairs[0].reference)
            latencies, server_s, errors = measure(server, pairs, args.requests, args.warmup)
            print(f"verify {size} ({w}x{h} inputs), one client: {format_ms(percentiles_ms(latencies))}; errors {errors}")
            print(f"  server-side elapsed_ms (preprocess + forward): {format_ms(percentiles_ms(server_s))}")
            if args.py_spy:
                breakdown(server, pairs, args.py_spy)
        print_memory(server)


if __name__ == "__main__":
    main()
