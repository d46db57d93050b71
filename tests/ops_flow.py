"""A two-step flow for the CLI tests of the dead-letter queue and workers: the second step
fails while the file named by OPS_BROKEN exists."""

from __future__ import annotations

import os
from pathlib import Path

from podium import Sequential, agent


@agent
def prepare(x: int) -> int:
    return x + 1


@agent
def deliver(x: int) -> str:
    if Path(os.environ.get("OPS_BROKEN", "/nonexistent")).exists():
        raise RuntimeError("the carrier rejected the parcel")
    return f"delivered {x}"


flow = Sequential("ship", [prepare, deliver])
