"""A task for the real-cluster test: leaves a trace of each run (a second run shows as "11")."""

from pathlib import Path


def touch(directory: str, number: int) -> None:
    with (Path(directory) / str(number)).open("a") as trace:
        trace.write("1")
