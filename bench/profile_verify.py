"""Latency of `POST /api/profiles/<id>/verify/`: one questioned signature against a profile with 10 stored references.

    .venv/bin/python bench/profile_verify.py [--model M] [--data ../shared/datasets] [--references 10]
        [--requests 200] [--quick]

Through the production server (gunicorn on a free loopback port, throw-away SQLite): registers a user,
creates a profile, uploads `--references` genuine signatures of one real writer (their embeddings are
computed once, at upload), then verifies that writer's other genuine signatures and skilled forgeries
one request at a time. One forward pass per request: the stored embeddings are reused. Prints p50/p95/p99
client-side latency, the server's `elapsed_ms`, the upload time and the server's peak memory.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from pathlib import Path

from _common import (ApiServer, add_common_args, cpu_note, format_ms, load_writer, multipart, percentiles_ms,
                     print_memory, resolve_model)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--references", type=int, default=10)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--torch-threads", type=int, default=2)
    args = p.parse_args()
    if args.quick:
        args.requests, args.warmup = 10, 2
    model = resolve_model(args.model)
    print(cpu_note())
    references, questioned = load_writer(args.data, args.references)
    with ApiServer(model, workers=args.workers, threads=args.threads, torch_threads=args.torch_threads) as server:
        print(server.describe())
        client = server.client()
        status, user = client.json("POST", "/api/auth/register/",
                                   {"username": f"bench-{secrets.token_hex(4)}", "password": secrets.token_urlsafe(16)})
        assert status == 201, (status, user)
        auth = {"Authorization": f"Token {user['token']}"}
        status, profile = client.json("POST", "/api/profiles/", {"name": "bench writer"}, headers=auth)
        assert status == 201, (status, profile)
        body, ctype = multipart([("images", Path(name).name, data) for name, data in references])
        started = time.perf_counter()
        status, data = client.request("POST", f"/api/profiles/{profile['id']}/references/", body, ctype, auth)
        upload_s = time.perf_counter() - started
        assert status == 201, (status, data[:300])
        print(f"enrolled {len(references)} references of {references[0][0].split('/')[0]} in one upload: {upload_s * 1000:.0f} ms")

        bodies = [multipart([("questioned", Path(name).name, data)]) for name, data in questioned]
        path = f"/api/profiles/{profile['id']}/verify/"
        latencies, server_s, errors = [], [], 0
        for i in range(args.warmup + args.requests):
            body, ctype = bodies[i % len(bodies)]
            started = time.perf_counter()
            status, data = client.request("POST", path, body, ctype, auth)
            elapsed = time.perf_counter() - started
            if i < args.warmup:
                continue
            if status != 200:
                errors += 1
                print(f"  error {status}: {data[:200]!r}")
                continue
            result = json.loads(data)
            assert result["reference_count"] == len(references), result
            latencies.append(elapsed)
            server_s.append(result["elapsed_ms"] / 1000)
        client.close()
        print(f"profile verify, {len(references)} references, one client: {format_ms(percentiles_ms(latencies))}; errors {errors}")
        print(f"  server-side elapsed_ms: {format_ms(percentiles_ms(server_s))}")
        print_memory(server)


if __name__ == "__main__":
    main()
