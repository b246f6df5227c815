"""gunicorn configuration: `cd backend && gunicorn -c python:config.gunicorn config.wsgi`.

Forward passes are serialised inside a process (the Verifier holds a lock) and torch uses
SIGVER_TORCH_THREADS threads each, so keep GUNICORN_WORKERS x SIGVER_TORCH_THREADS <= CPU cores;
threads let one worker keep answering health, dataset and enrollment calls during a forward pass.
No preload: each worker loads the model itself after the fork (torch's thread pools do not survive fork).
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


def post_worker_init(worker) -> None:
    """Each worker, once the app is loaded: delete reference files older than SIGVER_ORPHAN_SWEEP_AGE
    seconds (default 3600) that no row names, left by a worker killed mid-upload."""
    try:
        from signatures.services import reference_files_sweep

        reference_files_sweep(older_than_s=float(os.environ.get("SIGVER_ORPHAN_SWEEP_AGE", "3600")))
    except Exception as exc:  # the database may be down at start-up: serving matters more
        worker.log.warning("orphaned reference files not swept: %s", exc)
