"""What the journal costs the hot path: inbound throughput and webhook→socket latency with
the journal on and off (ATTITRE_JOURNAL_ENABLED), interleaved in one run.

    BENCH_DATABASE_URL=… BENCH_REDIS_URL=… BENCH_PORT=… \
        .venv/bin/python bench/journal.py --rounds 3 --out /tmp/journal.jsonl

Every round runs inbound:on, inbound:off, latency:on, latency:off (the order alternates
between rounds), each on a fresh database (bench/serve.sh), so a slow spell of a shared
machine hits both alike. Targets: with the journal on, >= 90 % of the throughput and
<= +1 ms p50 latency of the same run with it off, medians over rounds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.compare import FIGURES, last_json  # noqa: E402


def commands(n_inbound: int, n_latency: int, rate: int) -> dict:
    python = str(ROOT / ".venv/bin/python")
    return {
        "inbound": ["bench/serve.sh", python, "bench/inbound.py", "-n", str(n_inbound), "-c", "32"],
        "latency": ["bench/serve.sh", python, "bench/latency.py", "-n", str(n_latency), "--rate", str(rate)],
    }


def run(command: list[str], benchmark: str, journal: str) -> dict:
    env = {**os.environ, "ATTITRE_JOURNAL_ENABLED": "1" if journal == "on" else "0"}
    started = time.time()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S603
    record = {"benchmark": benchmark, "journal": journal, "started": started, "load": os.getloadavg()}
    try:
        result = last_json(done.stdout)
        record.update(figures=FIGURES[benchmark](result), result=result)
    except (ValueError, KeyError, TypeError) as exc:
        record.update(error=f"{type(exc).__name__}: {exc}", tail=(done.stdout + done.stderr)[-2000:])
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inbound", type=int, default=10000, help="webhooks per inbound run")
    parser.add_argument("--latency", type=int, default=1000, help="messages per latency run")
    parser.add_argument("--rate", type=int, default=50, help="latency run's messages per second")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", action="store_true", help="only report the runs already in --out")
    args = parser.parse_args()
    if args.report:
        report([json.loads(line) for line in args.out.read_text().splitlines()])
        return
    cmds = commands(args.inbound, args.latency, args.rate)
    records = []
    for round_ in range(1, args.rounds + 1):
        order = ("on", "off") if round_ % 2 else ("off", "on")
        for benchmark in ("inbound", "latency"):
            for journal in order:
                record = {"round": round_, **run(cmds[benchmark], benchmark, journal)}
                records.append(record)
                with args.out.open("a") as out:
                    out.write(json.dumps(record) + "\n")
                print(
                    json.dumps(
                        {k: record.get(k) for k in ("round", "benchmark", "journal", "figures", "load", "error")}
                    )
                )
                sys.stdout.flush()
    report(records)


def report(records: list[dict]) -> None:
    """Per round, journal on against off (rounds where both ran); the median of those ratios."""
    figures = {(r["round"], r["benchmark"], r["journal"]): r["figures"] for r in records if r.get("figures")}
    rounds = sorted({r["round"] for r in records})
    shares = [
        figures[n, "inbound", "on"]["msgs_per_s"] / figures[n, "inbound", "off"]["msgs_per_s"]
        for n in rounds
        if (n, "inbound", "on") in figures and (n, "inbound", "off") in figures
    ]
    deltas = [
        figures[n, "latency", "on"]["p50_ms"] - figures[n, "latency", "off"]["p50_ms"]
        for n in rounds
        if (n, "latency", "on") in figures and (n, "latency", "off") in figures
    ]
    if shares:
        share = statistics.median(shares)
        each = ", ".join(f"{s:.0%}" for s in shares)
        print(
            f"inbound throughput, on / off: median {share:.0%} of rounds [{each}] (target >= 90 %): "
            f"{'MET' if share >= 0.9 else 'MISSED'}"
        )
    if deltas:
        delta = statistics.median(deltas)
        each = ", ".join(f"{d:+.2f}" for d in deltas)
        print(
            f"latency p50, on - off: median {delta:+.2f} ms of rounds [{each}] (target <= +1 ms): "
            f"{'MET' if delta <= 1 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
