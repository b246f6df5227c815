"""gunicorn configuration: `cd backend && gunicorn -c python:config.gunicorn config.wsgi`.

Forward passes are serialised inside a process (the Verifier holds a lock) and the model (the ONNX export on ONNX
Runtime; torch without one) uses SIGVER_TORCH_THREADS threads each, so keep GUNICORN_WORKERS x SIGVER_TORCH_THREADS
<= CPU cores; threads let one worker keep answering health, dataset and enrollment calls during a forward pass.
No preload: each worker loads the model itself after the fork (thread pools do not survive fork).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))  # explain=true and pairs/verify take seconds
graceful_timeout = 30
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # "-": stdout; empty: no access log
errorlog = "-"
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn >= 25.1 opens a control socket for `gunicornc`, by default one path per user ($XDG_RUNTIME_DIR or
# ~/.gunicorn/gunicorn.ctl) that a second instance of the same user takes over. Off unless GUNICORN_CONTROL_SOCKET
# names a path for this instance (older gunicorns ignore both settings).
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip() or None
control_socket_disable = control_socket is None
if control_socket is None:
    del control_socket


# A thread waiting for the GIL gets it after at most this many seconds of another thread's Python (5 ms by default).
# A request takes the GIL back after each socket read or database call, so beside a thread busy in Python (a CSV
# export) a health check waited ~5 ms dozens of times: p95 103 ms during exports against 7 ms alone
# (bench/fault_drill.py). The model's forward pass runs outside the GIL and is not slowed.
SWITCH_INTERVAL_S = float(os.environ.get("SIGVER_GIL_SWITCH_INTERVAL", "0.001"))


def post_worker_init(worker) -> None:
    """Each worker, once the app is loaded, sets the GIL's switch interval (SWITCH_INTERVAL_S) and runs the
    callables SIGVER_WORKER_START_HOOKS names (by default the sweep of stored files that no row names, left by a
    worker killed mid-upload); a failing hook is logged and skipped."""
    import sys

    from django.conf import settings
    from django.utils.module_loading import import_string

    sys.setswitchinterval(SWITCH_INTERVAL_S)

    for path in getattr(settings, "SIGVER_WORKER_START_HOOKS", []):
        try:
            import_string(path)()
        except Exception as exc:  # the database may be down at start-up: serving matters more
            worker.log.warning("start-up hook %s failed: %s", path, exc)
