"""Issue 4's crash proof: 200 runs of a six-step workflow of non-idempotent side effects, on
SQLite and on Postgres, while `podium worker` processes are SIGKILLed at 20 seeded random
points of progress and restarted. Afterwards every run is completed or dead-lettered with a
reason, none is lost, and the side-effect table (a separate database) holds exactly one row
per completed effect step: no idempotency key twice.

The flow, the worker set-up and the accounting are in tests/chaos_worker.py (shared with
bench/reliability.py). Run with `-s` to see the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos_worker import STEPS, CrashReport, crash_many

pytestmark = pytest.mark.slow

RUNS = 200
KILLS = 20


def check(report: CrashReport) -> None:
    print(f"\ncrash test: {report.to_dict()}")
    assert report.problems == []
    assert report.kills == KILLS and report.kills_mid_work == KILLS
    assert report.lost == 0
    assert report.completed + report.dead_lettered == RUNS
    assert report.dead_lettered == RUNS // 20  # the 5% with a bad input, each with its reason
    assert report.duplicated_keys == 0
    assert report.effects == report.completed_effect_steps  # one row per completed effect step
    assert report.unjournaled_effects == 0
    assert report.effects == report.completed * STEPS + report.dead_lettered * 3
    # kills landed between an effect and its journal row, and reconcile caught it
    assert report.reconciled_happened > 0


def test_sigkilled_workers_lose_nothing_and_do_nothing_twice_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').resolve()}"
    check(crash_many(url, tmp_path / "side.db", runs=RUNS, kills=KILLS, seed=4))


@pytest.mark.postgres
def test_sigkilled_workers_lose_nothing_and_do_nothing_twice_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    check(crash_many(pg_url, tmp_path / "side.db", runs=RUNS, kills=KILLS, seed=5))
