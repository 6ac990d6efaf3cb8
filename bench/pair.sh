#!/usr/bin/env bash
# Inbound webhooks through HAProxy running deploy/haproxy.cfg (TLS, /readyz checks): first with
# one server behind it, then with two, each `uvicorn --workers WEB_CONCURRENCY` as the systemd
# unit starts it, on one PostgreSQL and one Redis. Everything shares this machine's cores, so
# the pair cannot show what two hosts would: the figure says what the proxy and a second
# server cost or gain here.      bench/pair.sh [-n 10000] [-c 32]   (make bench-pair)
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/attitre_bench_pair}"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/3}"
proxy_port="${BENCH_PORT:-8120}"
web1=$((proxy_port + 1)) web2=$((proxy_port + 2))
export PUBLIC_BASE_URL="https://127.0.0.1:${proxy_port}"
export TWILIO_ACCOUNT_SID="${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000000}"
export TWILIO_AUTH_TOKEN="${TWILIO_AUTH_TOKEN:-bench-auth-token}"
export DEBUG=0 SECRET_KEY="${SECRET_KEY:-bench-only-secret-key-not-for-production-use-0123456789}"
export ALLOWED_HOSTS="127.0.0.1,localhost" LOG_LEVEL=WARNING FORWARDED_ALLOW_IPS=127.0.0.1
workers="${WEB_CONCURRENCY:-2}"

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 143' TERM INT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/haproxy.pem"

db_name="${DATABASE_URL##*/}"
psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${db_name} WITH (FORCE)"
psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE ${db_name}"
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py demo --allow-production >/dev/null

serve() {
  .venv/bin/uvicorn config.asgi:application --host 127.0.0.1 --port "$1" --workers "$workers" --lifespan off \
    --no-access-log --log-level warning --proxy-headers &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.2; done
  echo "server on $1 did not start" >&2; exit 1
}
admin() {
  .venv/bin/python -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); \
s.sendall(sys.argv[2].encode()+b'\n'); print(s.recv(65536).decode(), end='')" "$work/admin.sock" "$1"
}
wait_up() {
  for _ in $(seq 1 100); do
    [ "$(admin 'show stat' | awk -F, -v s="$1" '$1=="web" && $2==s {print $18}')" = UP ] && return; sleep 0.2
  done
  echo "HAProxy never saw $1 up" >&2; exit 1
}
bench() {
  echo "=== $1"
  .venv/bin/python -W ignore bench/inbound.py --url "$PUBLIC_BASE_URL" --cafile "$work/cert.pem" "${@:2}"
}

serve "$web1"
ATTITRE_PUBLIC_HOST=127.0.0.1 ATTITRE_TLS_CERT="$work/haproxy.pem" ATTITRE_HTTPS_BIND="127.0.0.1:${proxy_port}" \
  ATTITRE_HTTP_BIND="127.0.0.1:$((proxy_port + 3))" ATTITRE_HAPROXY_SOCKET="$work/admin.sock" \
  ATTITRE_HAPROXY_LOG=stdout ATTITRE_HAPROXY_MAXCONN=4000 ATTITRE_WEB1="127.0.0.1:$web1" \
  ATTITRE_WEB2="127.0.0.1:$web2" /usr/sbin/haproxy -db -f deploy/haproxy.cfg >"$work/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -S "$work/admin.sock" ] && break; sleep 0.1; done
admin "set server web/web2 state maint" >/dev/null
wait_up web1
bench "one server ($workers uvicorn workers), straight to it" --url "http://127.0.0.1:$web1" "$@"
bench "one server ($workers uvicorn workers) behind HAProxy" "$@"

serve "$web2"
admin "set server web/web2 state ready" >/dev/null
wait_up web2
bench "two servers ($workers uvicorn workers each) behind HAProxy" "$@"
