"""Our custom pieces against what the libraries ship, measured interleaved.

    .venv/bin/python bench/compare.py --rounds 3 --out /tmp/compare.jsonl \
        latency:ours latency:layer outbound:ours outbound:broker

Each argument is `<benchmark>:<variant>`, the variant `ours` (config.settings) or a
comma-separated list of pieces run as shipped (bench/settings_shipped.py). Every round
runs every argument once, in the order given, so a slow spell of a shared machine hits
each variant alike; the medians over rounds are printed at the end and every run is
appended to --out as one JSON line. Environment: BENCH_DATABASE_URL, BENCH_REDIS_URL,
BENCH_PORT and SIMULATOR_PORT, as for `make bench-*`.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "inbound": ["make", "bench-inbound", "N=20000", "C=32"],
    "outbound": ["make", "bench-outbound", "N=1000", "W=4"],
    "latency": ["make", "bench-latency", "N=1000", "RATE=50"],
    "sockets": ["make", "bench-sockets", "N=5000"],
    # In process, CPU per message (less shaken by a busy machine than wall time).
    "batches": ["bench/serve.sh", ".venv/bin/python", "bench/inbound_batches.py", "-n", "2000", "--sizes", "1", "32"],
}

# The figures of each benchmark's JSON that the targets are about.
FIGURES = {
    "inbound": lambda r: {"msgs_per_s": r["accepted_per_s"], "p99_ms": r["p99_ms"], "lost": r["lost"]},
    "outbound": lambda r: {
        "delivered_per_s": r["delivered_msgs_per_s"],
        "duplicates": r["duplicates"],
        "missing": r["missing"],
        "cpu_worker_s": r["cpu_s_during_delivery"].get("worker"),
    },
    "latency": lambda r: {"p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "missing": r["missing"]},
    "sockets": lambda r: {
        "kib_each": r["per_socket_kib"],
        "open": r["still_open_after_latency_run"],
        "p50_ms": r["latency_with_sockets_open"]["p50_ms"],
        "p99_ms": r["latency_with_sockets_open"]["p99_ms"],
    },
    "batches": lambda r: {f"{size}_{part}_ms": r[size][part] for size in r for part in ("python", "pg", "wall")},
}


def batch_lines(output: str) -> dict:
    """bench/inbound_batches.py's lines, `batch   1: Python 2.10 ms/msg, PostgreSQL 0.80 ms/msg, wall …`."""
    found = re.findall(r"batch +(\d+): Python ([\d.]+) ms/msg, PostgreSQL ([\d.]+) ms/msg, wall ([\d.]+)", output)
    if not found:
        raise ValueError("no batch lines")
    return {f"b{size}": {"python": float(p), "pg": float(pg), "wall": float(w)} for size, p, pg, w in found}


def last_json(output: str) -> dict:
    """The benchmark's result: the last top-level JSON object it printed (indent=2)."""
    lines = output.splitlines()
    end = max(i for i, line in enumerate(lines) if line == "}")
    start = max(i for i, line in enumerate(lines[:end]) if line == "{")
    return json.loads("\n".join(lines[start : end + 1]))


def run(benchmark: str, variant: str) -> dict:
    env = dict(os.environ)
    if variant != "ours":
        env.update(DJANGO_SETTINGS_MODULE="bench.settings_shipped", BENCH_SHIPPED=variant)
    started = time.time()
    done = subprocess.run(COMMANDS[benchmark], cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S603
    record = {"benchmark": benchmark, "variant": variant, "started": started, "load": os.getloadavg()}
    try:
        result = batch_lines(done.stdout) if benchmark == "batches" else last_json(done.stdout)
        record.update(figures=FIGURES[benchmark](result), result=result)
    except (ValueError, KeyError, TypeError) as exc:
        record.update(error=f"{type(exc).__name__}: {exc}", tail=(done.stdout + done.stderr)[-2000:])
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="<benchmark>:<variant>")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs = [tuple(item.split(":", 1)) for item in args.runs]
    records = []
    for round_ in range(1, args.rounds + 1):
        for benchmark, variant in runs:
            record = {"round": round_, **run(benchmark, variant)}
            records.append(record)
            with args.out.open("a") as out:
                out.write(json.dumps(record) + "\n")
            print(json.dumps({k: record.get(k) for k in ("round", "benchmark", "variant", "figures", "error")}))
            sys.stdout.flush()
    print("medians:")
    for benchmark, variant in runs:
        mine = [r for r in records if (r["benchmark"], r["variant"]) == (benchmark, variant)]
        figures = [r["figures"] for r in mine if "figures" in r]
        if figures:
            medians = {k: statistics.median([f[k] for f in figures if f[k] is not None] or [None]) for k in figures[0]}
            print(f"  {benchmark}:{variant} ({len(figures)} runs): {medians}")


if __name__ == "__main__":
    main()
