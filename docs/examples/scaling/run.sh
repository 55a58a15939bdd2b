#!/bin/sh
# The reference deployment of docs/scaling.md on one machine: two `lastgood serve` on one
# PostgreSQL store, nginx in front. Run it in the workspace (the folder with lastgood.toml):
#
#   LASTGOOD_STORE=postgresql://lastgood@db.internal/lastgood sh docs/examples/scaling/run.sh
#
# Applications then use http://127.0.0.1:8470 (the proxy), or both servers directly:
#   LiveConfig(["http://127.0.0.1:8471", "http://127.0.0.1:8472"], "production")
#
# Settings: LASTGOOD_STORE (required), PROXY_PORT (8470), SERVER_A_PORT (8471), SERVER_B_PORT
# (8472), WORKERS (worker processes per server, 1), LASTGOOD (the lastgood command), NGINX
# (/usr/sbin/nginx), RUN_DIR (where nginx's files go; a new temporary folder by default).
# It prints one "ready" line once the proxy answers, and stops everything on Ctrl-C or SIGTERM.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lastgood=${LASTGOOD:-lastgood}
nginx=${NGINX:-/usr/sbin/nginx}
proxy=${PROXY_PORT:-8470}
a=${SERVER_A_PORT:-8471}
b=${SERVER_B_PORT:-8472}
: "${LASTGOOD_STORE:?set LASTGOOD_STORE to the PostgreSQL store both servers share}"
run=${RUN_DIR:-$(mktemp -d)}
mkdir -p "$run/temp"
user=""
[ "$(id -u)" = 0 ] && user="user root;"  # workers as nobody could not enter a private $run
sed -e "s/127.0.0.1:8470;/127.0.0.1:$proxy;/" -e "s/127.0.0.1:8471 /127.0.0.1:$a /" \
    -e "s/127.0.0.1:8472 /127.0.0.1:$b /" -e "s/^#user;/$user/" "$here/nginx.conf" >"$run/nginx.conf"

pids=""
stop() {
    trap - EXIT INT TERM
    kill $pids 2>/dev/null || true  # one may be gone already
    wait
}
trap stop EXIT
trap 'exit 0' INT TERM

"$lastgood" --store "$LASTGOOD_STORE" serve --port "$a" --workers "${WORKERS:-1}" &
pids="$pids $!"
echo "server a: pid $! on http://127.0.0.1:$a"
"$lastgood" --store "$LASTGOOD_STORE" serve --port "$b" --workers "${WORKERS:-1}" &
pids="$pids $!"
echo "server b: pid $! on http://127.0.0.1:$b"
"$nginx" -p "$run" -c "$run/nginx.conf" &
pids="$pids $!"

for _ in $(seq 300); do
    if curl -fs "http://127.0.0.1:$a/healthz" >/dev/null && curl -fs "http://127.0.0.1:$b/healthz" >/dev/null &&
        curl -fs "http://127.0.0.1:$proxy/healthz" >/dev/null; then
        echo "ready: http://127.0.0.1:$proxy"
        wait
        exit 0
    fi
    sleep 0.1
done
echo "the servers or nginx did not answer within 30 s" >&2
exit 1
