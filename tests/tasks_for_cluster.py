"""Tasks for the real-cluster tests: each leaves a trace of every run (a second run shows)."""

import time
from pathlib import Path


def touch(directory: str, number: int) -> None:
    with (Path(directory) / str(number)).open("a") as trace:
        trace.write("1")


def stamp(directory: str, name: str) -> None:
    """Record when the task ran (one line per run)."""
    with (Path(directory) / name).open("a") as trace:
        trace.write(f"{time.time()}\n")
