"""Throughput of `POST /api/verify/` with N concurrent clients for a bounded time, through the production server.

    .venv/bin/python bench/verify_throughput.py [--model M] [--data ../shared/datasets] [--clients 1,2,4,8]
        [--duration 20] [--servers 1x4x2] [--quick]

Each client is a thread with its own keep-alive connection sending real 256x256 CEDAR/GPDS pairs back to
back for `--duration` seconds (after a short warm-up). `--servers` lists gunicorn configurations to
compare, each WORKERSxTHREADSxTORCH_THREADS (e.g. `1x4x2,2x2x1`). Prints verifications/s, p50/p95
latency and the error count (anything but 200, or a failed connection) per client count, and the
server's peak memory.
"""

from __future__ import annotations

import argparse
import threading
import time

from _common import (ApiServer, add_common_args, cpu_note, format_ms, load_pairs, percentiles_ms, print_memory,
                     resolve_model, verify_body)


def run_clients(server: ApiServer, bodies, clients: int, duration: float) -> tuple[int, list[float], int, float]:
    """(verifications, latencies, errors, seconds) of `clients` threads hammering the server for `duration` s."""
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    start_barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client_loop(k: int) -> None:
        client = server.client()
        start_barrier.wait()
        i = k
        while time.perf_counter() < deadline[0]:
            body, ctype = bodies[i % len(bodies)]
            i += clients
            started = time.perf_counter()
            try:
                status, data = client.request("POST", "/api/verify/", body, ctype)
            except OSError:
                status, data = -1, b"connection failed"
            elapsed = time.perf_counter() - started
            with lock:
                if status == 200:
                    counts["ok"] += 1
                    latencies.append(elapsed)
                else:
                    counts["errors"] += 1
                    if counts["errors"] <= 3:
                        print(f"  error {status}: {data[:200]!r}")
        client.close()

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + duration
    start_barrier.wait()
    for t in threads:
        t.join()
    return counts["ok"], latencies, counts["errors"], time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--clients", default="1,2,4,8")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per client count")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--servers", default="1x4x2", help="gunicorn WORKERSxTHREADSxTORCH_THREADS, comma-separated")
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup, args.pairs = 3.0, 1.0, 8
    model = resolve_model(args.model)
    print(cpu_note())
    bodies = [verify_body(pair) for pair in load_pairs(args.data, args.pairs)]
    for spec in args.servers.split(","):
        workers, threads, torch_threads = (int(x) for x in spec.split("x"))
        with ApiServer(model, workers=workers, threads=threads, torch_threads=torch_threads) as server:
            print(server.describe())
            run_clients(server, bodies, max(1, workers), args.warmup)
            for clients in (int(c) for c in args.clients.split(",")):
                ok, latencies, errors, seconds = run_clients(server, bodies, clients, args.duration)
                stats = percentiles_ms(latencies)
                print(f"  {clients} client(s), {seconds:.0f} s: {ok / seconds:.1f} verifications/s, "
                      f"p50 {stats['p50']:.0f} ms, p95 {stats['p95']:.0f} ms, errors {errors}")
            print_memory(server)


if __name__ == "__main__":
    main()
