#!/usr/bin/env bash
# nginx in front of gunicorn, in the foreground, as the current user (docs/deployment.md):
#   scripts/proxy.sh [LISTEN] [UPSTREAM]        default LISTEN 127.0.0.1:8080, UPSTREAM 127.0.0.1:8000
# Start gunicorn first, with SIGVER_NUM_PROXIES=1:
#   (cd backend && SIGVER_NUM_PROXIES=1 ../.venv/bin/gunicorn -c python:config.gunicorn config.wsgi) &
#   scripts/proxy.sh
# The rendered configuration, logs and buffers go to SIGVER_PROXY_DIR (default: a new temporary folder).
set -euo pipefail
LISTEN="${1:-127.0.0.1:8080}"
UPSTREAM="${2:-127.0.0.1:8000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
if [ ! -x "$NGINX" ]; then
    echo "nginx is not installed (Debian: apt-get install nginx-light)" >&2
    exit 2
fi
RUNDIR="${SIGVER_PROXY_DIR:-$(mktemp -d -t sigver-proxy-XXXXXX)}"
mkdir -p "$RUNDIR"
chmod 755 "$RUNDIR"
# started as root, nginx's workers run as nobody and keep large bodies in $RUNDIR/client_body: every
# folder above it must let nobody through (mktemp's folders under /tmp do)
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && ! runuser -u nobody -- test -x "$RUNDIR"; then
    echo "nginx's workers (user nobody) cannot reach $RUNDIR: choose SIGVER_PROXY_DIR under /tmp" >&2
    exit 2
fi
sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@UPSTREAM@|$UPSTREAM|g" -e "s|@RUNDIR@|$RUNDIR|g" \
    "$HERE/deploy/nginx/sigver.conf" > "$RUNDIR/nginx.conf"
"$NGINX" -t -q -p "$RUNDIR" -c "$RUNDIR/nginx.conf"
echo "nginx on http://$LISTEN -> gunicorn on $UPSTREAM (configuration and logs in $RUNDIR)"
exec "$NGINX" -p "$RUNDIR" -c "$RUNDIR/nginx.conf" -g "daemon off;"
