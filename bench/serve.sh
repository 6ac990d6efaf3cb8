#!/usr/bin/env bash
# Run a benchmark against the shipped ASGI server (uvicorn, WEB_CONCURRENCY workers)
# on PostgreSQL and Redis: prepares the bench database, starts the server, runs
# the given command, stops the server.   bench/serve.sh .venv/bin/python bench/inbound.py -n 20000
set -euo pipefail
cd "$(dirname "$0")/.."
# Thousands of sockets (bench/sockets.py) need as many file descriptors, server and client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/attitre_bench}"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/1}"
export BENCH_PORT="${BENCH_PORT:-8100}"
export PUBLIC_BASE_URL="http://127.0.0.1:${BENCH_PORT}"
export TWILIO_ACCOUNT_SID="${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000000}"
export TWILIO_AUTH_TOKEN="${TWILIO_AUTH_TOKEN:-bench-auth-token}"
export DEBUG=0 SECRET_KEY="${SECRET_KEY:-bench-only-secret-key-not-for-production-use-0123456789}"
export ALLOWED_HOSTS="127.0.0.1,localhost" LOG_LEVEL=WARNING
export SECURE_SSL_REDIRECT=0  # plain http here, no TLS proxy in front
export WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"

# A fresh database every run: figures must not depend on earlier runs' dead rows
# (this machine's PostgreSQL runs with autovacuum off). BENCH_KEEP_DB=1 serves the
# database as it is instead: a bank built by bench/bank.py takes minutes to rebuild.
if [ "${BENCH_KEEP_DB:-0}" != 1 ]; then
  db_name="${DATABASE_URL##*/}"
  psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${db_name} WITH (FORCE)"
  psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE ${db_name}"
  .venv/bin/python manage.py migrate --noinput -v0
  .venv/bin/python manage.py demo --allow-production >/dev/null
fi

.venv/bin/uvicorn config.asgi:application --host 127.0.0.1 --port "$BENCH_PORT" --workers "$WEB_CONCURRENCY" \
  --lifespan off --no-access-log --log-level warning --timeout-graceful-shutdown 5 ${UVICORN_ARGS:-} &
server=$!
export SERVER_PID=$server
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:${BENCH_PORT}/healthz" >/dev/null && break; sleep 0.2; done
"$@"
