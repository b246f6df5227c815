#!/usr/bin/env bash
# `make run`: migrate, start the API (Django runserver) and the interface (Streamlit), print their URLs once
# both answer, and stop both on Ctrl-C (or SIGTERM) with a short message and exit code 0.
#
#   scripts/run.sh            # what `make run` calls; every setting below can be given in the environment
#
# Environment: PY (the virtual environment's python), API_HOST, API_PORT, UI_PORT, MODEL, DATA, and the
# backend's own variables (SIGVER_MODEL_PATH, SIGVER_DATA_DIR, SIGVER_SQLITE_PATH, DJANGO_DEBUG, ...).
# RUN_START_TIMEOUT: seconds to wait for both servers to answer (default 300).
#
# Ctrl-C on a terminal reaches every process of the foreground process group: make, this script and both
# servers. GNU make always dies of a SIGINT it receives (status 130 and "*** Interrupt"), so on a terminal
# the script re-runs itself as a job of its own (`set -m`), which gets the terminal: Ctrl-C then reaches
# only that job, which stops both servers and exits 0, and so does make.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -t 0 ] && [ -z "${SIGVER_RUN_JOB:-}" ]; then
    set -m  # job control: the job below runs in its own process group, in the terminal's foreground
    SIGVER_RUN_JOB=1 "$0" "$@"
    exit $?
fi

PY="${PY:-.venv/bin/python}"
case "$PY" in /*) ;; *) PY="$ROOT/$PY" ;; esac
API_HOST="${API_HOST:-127.0.0.1}"
API_PORT="${API_PORT:-8000}"
UI_PORT="${UI_PORT:-8501}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
export SIGVER_MODEL_PATH="${SIGVER_MODEL_PATH:-$(realpath -m "${MODEL:-trained_model_parameters/siamese_resnet18.safetensors}")}"
export SIGVER_DATA_DIR="${SIGVER_DATA_DIR:-$(realpath -m "${DATA:-organized_data}")}"
API_URL="http://$API_HOST:$API_PORT"
UI_URL="http://$API_HOST:$UI_PORT"

api_pid="" ui_pid="" poll_pid=""

stop() {  # $1: exit code
    trap '' INT TERM  # a second Ctrl-C while stopping changes nothing
    local pids
    pids="$(echo "$api_pid $ui_pid $poll_pid" | xargs)"
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null
        for _ in $(seq 50); do  # up to 10 s, then force
            # shellcheck disable=SC2086
            kill -0 $pids 2>/dev/null || break
            sleep 0.2
        done
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        wait 2>/dev/null
    fi
    echo "Stopped."
    exit "$1"
}

on_signal() {
    echo
    echo "Stopping the API and the interface..."
    stop 0
}

trap on_signal INT TERM

(cd backend && "$PY" manage.py migrate --noinput) || { echo "run: the database migration failed" >&2; exit 1; }

(cd backend && exec "$PY" manage.py runserver "$API_HOST:$API_PORT" --noreload) &
api_pid=$!
SIGVER_API_URL="${SIGVER_API_URL:-$API_URL}" "$PY" -m streamlit run interface/app.py \
    --server.address "$API_HOST" --server.port "$UI_PORT" --server.headless true \
    --browser.gatherUsageStats false &
ui_pid=$!

# Wait until both answer (in a child, so that Ctrl-C is handled at once), then print the URLs.
"$PY" - "$API_URL/api/health/" "$UI_URL/_stcore/health" "${RUN_START_TIMEOUT:-300}" <<'EOF' &
import sys, time, urllib.error, urllib.request
*urls, timeout = sys.argv[1:]
deadline = time.monotonic() + float(timeout)
pending = list(urls)
while pending and time.monotonic() < deadline:
    for url in list(pending):
        try:
            urllib.request.urlopen(url, timeout=2).close()
            pending.remove(url)
        except urllib.error.HTTPError as exc:  # 503 from a degraded API is still an answer
            if exc.code < 500 or exc.code == 503:
                pending.remove(url)
        except OSError:
            pass
    time.sleep(0.5)
sys.exit(1 if pending else 0)
EOF
poll_pid=$!
wait "$poll_pid"
ready=$?
poll_pid=""
for name in api ui; do
    pid_var="${name}_pid"
    if ! kill -0 "${!pid_var}" 2>/dev/null; then
        wait "${!pid_var}"
        echo "run: the $( [ $name = api ] && echo API || echo interface ) exited at start-up (status $?); see above." >&2
        printf -v "$pid_var" ""
        stop 1
    fi
done
if [ "$ready" != 0 ]; then
    echo "run: the servers did not answer within ${RUN_START_TIMEOUT:-300} s" >&2
    stop 1
fi

# the Datasets page browses SIGVER_DATA_DIR's dataset folders: say how to point it at some when it has none
if [ -z "$(find "$SIGVER_DATA_DIR" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1)" ]; then
    echo "  No datasets in $SIGVER_DATA_DIR: the Datasets page is empty. To browse some, start with"
    echo "  make run DATA=DIR (a folder of dataset folders, e.g. DATA=../shared/datasets; organized_data/README.md)."
fi
cat <<EOF

  API:        $API_URL/api/
  API docs:   $API_URL/api/docs/
  Interface:  $UI_URL/
  Ctrl-C stops both.

EOF

# Either server ending on its own ends the other one too.
wait -n "$api_pid" "$ui_pid"
status=$?
echo "run: a server stopped unexpectedly (status $status); stopping the other one." >&2
stop 1
