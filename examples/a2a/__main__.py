"""`python -m examples.a2a`: the whole story in one command. It starts the supplier's desk
(`podium a2a serve`, a process of its own, on a free port), then runs the buyer's workflow in
another process twice: a small order (quoted at once) and a bulk one (the desk asks for a
discount; the buyer's run waits; a person answers from a third process; both runs finish)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.a2a [FOLDER]`: the stores go in FOLDER (default: a new temporary
    folder): supplier.db for the desk, buyer.db for the buyer."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="podium-a2a-"))
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    serve = ["--port", "0", "--store", f"sqlite:///{folder / 'supplier.db'}"]
    desk = subprocess.Popen(
        [sys.executable, "-m", "podium", "a2a", "serve", f"{HERE / 'desk.py'}:quote_desk", *serve],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert desk.stdout is not None
        url = desk.stdout.readline().split()[-1]
        print(f"supplier's quote desk: {url}")
        env["QUOTE_DESK_URL"] = url
        store = f"sqlite:///{folder / 'buyer.db'}"
        waiting = []
        for qty in ("40", "150"):
            print(f"\n$ python -m examples.a2a.buyer --qty {qty}")
            buyer = ["-m", "examples.a2a.buyer", "--qty", qty, "--store", store]
            *_, last = _run([sys.executable, *buyer], env).splitlines()
            if last.endswith(" waiting"):
                waiting.append(last.split()[1])
        for run_id in waiting:  # a person on the buyer's side grants the discount
            print(f"\n$ podium answer {run_id} '\"approve\"'")
            _run(
                [sys.executable, "-m", "podium", "answer", run_id, '"approve"', "--store", store],
                env,
            )
    finally:
        desk.terminate()
        desk.wait(10)
    return 0


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    print(done.stdout + done.stderr, end="")
    if done.returncode != 0:
        raise SystemExit(done.returncode)
    return done.stdout


if __name__ == "__main__":
    raise SystemExit(main())
