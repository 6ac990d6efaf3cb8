#!/usr/bin/env bash
# Benchmark a bank built by bench/bank.py as it is: one uvicorn process (DEBUG off) on
# that database, then bench/scale.py against it.
#   SCALE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/attitre_scale bench/scale.sh --label 1M
# The API's per-key and per-user rates are lifted: the benchmark sends thousands of calls a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_KEEP_DB=1
export BENCH_DATABASE_URL="${SCALE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/attitre_scale}"
export BENCH_REDIS_URL="${SCALE_REDIS_URL:-redis://127.0.0.1:6379/6}"
export BENCH_PORT="${BENCH_PORT:-8120}"
export WEB_CONCURRENCY=1
export API_KEY_RATE="${API_KEY_RATE:-1000000/min}" API_USER_RATE="${API_USER_RATE:-1000000/min}"
exec bench/serve.sh .venv/bin/python bench/scale.py "$@"
