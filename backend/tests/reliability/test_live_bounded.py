"""Bounded cost against the production setup: gunicorn (config/gunicorn.py, 2 workers x 4 threads) behind
nginx (deploy/nginx/sigver.conf through scripts/proxy.sh), real HTTP on loopback.

- slow clients holding connections do not starve health, through nginx;
- simultaneous uploads cannot push a profile past its reference limit, simultaneous registrations of
  one name in several spellings give one account;
- a charset that is not one is a JSON 415 over real HTTP; scan bombs are refused at once
  while health answers.
The nginx tests are skipped where nginx is not installed (Debian: apt-get install nginx-light).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from api_helpers import png
from hostile_inputs import jpeg_scan_bomb
from live_gunicorn import live_env, migrate, needs_gunicorn, start, stop, wait_for
from sigml.testing import free_port

REPO = Path(__file__).resolve().parents[3]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
REFERENCE_LIMIT = 10

pytestmark = needs_gunicorn
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx-light)")


@pytest.fixture(scope="module")
def production(test_model_path, tmp_path_factory):
    """gunicorn on one free port and, where nginx exists, nginx in front of it on another."""
    folder = tmp_path_factory.mktemp("production")
    port = free_port()
    env = live_env(folder, model=test_model_path, port=port, secret="live-test-only-" + "x" * 40,
                   SIGVER_NUM_PROXIES="1", SIGVER_THROTTLE_ANON="100000/min", SIGVER_THROTTLE_USER="100000/min",
                   SIGVER_THROTTLE_AUTH="100000/min", SIGVER_MAX_REFERENCES_PER_PROFILE=str(REFERENCE_LIMIT),
                   GUNICORN_WORKERS="2", GUNICORN_THREADS="4", GUNICORN_ACCESSLOG="")
    migrate(env)
    log = folder / "gunicorn.log"
    server = start(env, log)
    urls = {"direct": f"http://127.0.0.1:{port}"}
    proxy = None
    try:
        wait_for(urls["direct"] + "/api/health/", server, log)
        if NGINX:
            proxy_dir = tempfile.mkdtemp(prefix="sigver-proxy-")  # under /tmp: nginx's workers may run as nobody
            proxy_port = free_port()
            proxy_log = folder / "proxy.log"
            with proxy_log.open("w") as out:
                proxy = subprocess.Popen(["bash", str(REPO / "scripts" / "proxy.sh"), f"127.0.0.1:{proxy_port}",
                                          f"127.0.0.1:{port}"], env={**env, "SIGVER_PROXY_DIR": proxy_dir},
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            urls["proxy"] = f"http://127.0.0.1:{proxy_port}"
            wait_for(urls["proxy"] + "/api/health/", proxy, proxy_log, timeout=30)
        yield urls
    finally:
        if proxy is not None:
            stop(proxy)
            shutil.rmtree(proxy_dir, ignore_errors=True)
        stop(server)


def health_latencies(url: str, seconds: float, every: float = 1.0) -> list[float]:
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            ok = requests.get(url + "/api/health/", timeout=5).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.monotonic() - started if ok else float("inf"))
        time.sleep(every)
    return latencies


def slow_client(address: tuple[str, int], stop_event: threading.Event, body: int = 200_000) -> None:
    """A client that sends a request header, then its body one byte every 2 s."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(b"POST /api/verify/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n"
                     + f"Content-Length: {body}\r\n\r\n".encode())
        while not stop_event.wait(2.0):
            try:
                sock.sendall(b"-")
            except OSError:
                return


@needs_nginx
def test_slow_clients_do_not_starve_health_behind_nginx(production):
    host, port = production["proxy"].removeprefix("http://").split(":")
    stop_event = threading.Event()
    clients = [threading.Thread(target=slow_client, args=((host, int(port)), stop_event)) for _ in range(12)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.0)
        latencies = health_latencies(production["proxy"], seconds=8)
    finally:
        stop_event.set()
        for client in clients:
            client.join(10)
    print(f"health through nginx with 12 slow clients: max {max(latencies) * 1000:.0f} ms over {len(latencies)} checks")
    assert latencies and max(latencies) < 2.0, latencies


def test_the_proxy_forwards_the_port_of_the_host():
    """Behind nginx on a port other than 80, absolute links must keep it: the Host header is the client's, port and
    all ($http_host; $host drops the port)."""
    conf = (REPO / "deploy" / "nginx" / "sigver.conf").read_text()
    assert "proxy_set_header Host $http_host;" in conf and "proxy_set_header Host $host;" not in conf


@needs_nginx
def test_absolute_links_keep_the_proxy_port(production):
    links = requests.get(production["proxy"] + "/api/", timeout=10).json()
    hrefs = [v["href"] for v in (links.get("links") or links).values() if isinstance(v, dict) and "href" in v]
    assert hrefs and all(h.startswith(production["proxy"] + "/") for h in hrefs), hrefs


@needs_nginx
def test_a_large_upload_passes_through_the_proxy(production):
    """nginx buffers bodies over 1 MiB on disk: that must work (its workers can write their buffers)."""
    big = png(3) + b"\x00" * (3 * 2**20)  # a valid PNG with 3 MiB of trailing bytes
    files = {"reference": ("a.png", png(1), "image/png"), "questioned": ("b.png", big, "image/png")}
    response = requests.post(production["proxy"] + "/api/verify/", files=files, timeout=120)
    assert response.status_code in (200, 415), response.text[:300]
    assert set(response.json()) >= ({"distance"} if response.status_code == 200 else {"error"})


def test_simultaneous_uploads_cannot_pass_the_reference_limit(production):
    url = production.get("proxy", production["direct"])
    token = requests.post(url + "/api/auth/register/", json={"username": "uploader", "password": "a-long-passphrase-1"},
                          timeout=60).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    profile = requests.post(url + "/api/profiles/", json={"name": "P"}, headers=headers, timeout=30).json()["id"]
    barrier = threading.Barrier(8)

    def upload(i: int) -> int:
        files = [("images", (f"{i}-{k}.png", png(100 * i + k), "image/png")) for k in range(3)]
        barrier.wait(30)
        return requests.post(f"{url}/api/profiles/{profile}/references/", files=files, headers=headers, timeout=120).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(upload, range(8)))
    stored = requests.get(f"{url}/api/profiles/{profile}/references/?page_size=100", headers=headers, timeout=30).json()
    count = stored.get("count", len(stored.get("results", [])))
    print(f"8 simultaneous uploads of 3 references (limit {REFERENCE_LIMIT}): {sorted(statuses)}, {count} stored")
    assert all(s in (201, 400, 503) for s in statuses), statuses
    assert count <= REFERENCE_LIMIT and count == 3 * statuses.count(201)


def test_simultaneous_registrations_of_one_name_give_one_account(production):
    url = production.get("proxy", production["direct"])
    spellings = ["Frank", "frank", "FRANK", "\uff26\uff52\uff41\uff4e\uff4b", "fRANK", "FrAnK", "\uff46\uff52\uff41\uff4e\uff4b", "franK"]
    barrier = threading.Barrier(len(spellings))

    def register(name: str) -> int:
        barrier.wait(30)
        return requests.post(url + "/api/auth/register/", json={"username": name, "password": "a-long-passphrase-1"},
                             timeout=120).status_code

    with ThreadPoolExecutor(len(spellings)) as pool:
        statuses = list(pool.map(register, spellings))
    print(f"{len(spellings)} simultaneous registrations of one name: {statuses}")
    assert statuses.count(201) == 1 and statuses.count(400) == len(spellings) - 1, statuses


@pytest.mark.parametrize("via", ["direct", "proxy"])
def test_a_charset_that_is_not_one_is_a_json_415_over_http(production, via):
    if via not in production:
        pytest.skip("nginx is not installed")
    response = requests.get(production[via] + "/api/health/?a=1", headers={"Content-Type": "text/plain; charset=zlib"},
                            timeout=30)
    assert response.status_code == 415 and response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_scan_bombs_are_refused_at_once_while_health_answers(production):
    url = production.get("proxy", production["direct"])
    bomb = jpeg_scan_bomb(20_000)
    results: list[tuple[int, float]] = []

    def send() -> None:
        for _ in range(3):
            started = time.monotonic()
            files = {"reference": ("a.png", png(1), "image/png"), "questioned": ("b.jpg", bomb, "image/jpeg")}
            status = requests.post(url + "/api/verify/", files=files, timeout=120).status_code
            results.append((status, time.monotonic() - started))

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    latencies = health_latencies(url, seconds=3, every=0.5)
    for sender in senders:
        sender.join(120)
    print(f"12 scan bombs from 4 clients: statuses {sorted({s for s, _ in results})}, slowest "
          f"{max(t for _, t in results):.2f} s; health max {max(latencies) * 1000:.0f} ms")
    assert len(results) == 12 and all(status == 413 for status, _ in results), results
    assert max(t for _, t in results) < 5.0 and max(latencies) < 2.0
