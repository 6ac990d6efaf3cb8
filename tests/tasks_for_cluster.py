"""Tasks for the real-cluster tests: each leaves a trace of every run (a second run shows)."""

import os
import time
from pathlib import Path


def touch(directory: str, number: int) -> None:
    with (Path(directory) / str(number)).open("a") as trace:
        trace.write("1")


def stamp(directory: str, name: str) -> None:
    """Record when the task ran (one line per run)."""
    with (Path(directory) / name).open("a") as trace:
        trace.write(f"{time.time()}\n")


def rendezvous(directory: str, number: int, clusters: int) -> None:
    """Record which cluster ran task `number` (ATTITRE_TEST_CLUSTER, set on each test cluster),
    then wait, at most 20 s, until tasks ran on `clusters` clusters: a cluster with one worker
    cannot finish its tasks alone, so the others must have claimed some of them meanwhile."""
    with (Path(directory) / str(number)).open("a") as trace:
        trace.write(os.environ.get("ATTITRE_TEST_CLUSTER", "?") + "\n")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = {path.read_text().split()[0] for path in Path(directory).iterdir() if path.read_text().strip()}
        if len(seen) >= clusters:
            return
        time.sleep(0.05)
