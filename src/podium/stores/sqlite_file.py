"""A SQLite file made, opened and checked so that podium never writes into a store it could
not verify: the directory, an empty or foreign file, damage (`PRAGMA quick_check`), and the
URL's options. See the module docstring of `podium.stores.sqlite` for what a user sees.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from pathlib import Path

from podium.errors import UsageError

APPLICATION_ID = 0x706F6431  # "pod1" in the file header: this file is a podium store
DEFAULT_DIR = ".podium"  # the only directory a store creates by itself


def open_error(path: str, error: BaseException) -> BaseException:
    """What opening failed with, as the one line a user reads (a damaged file says so)."""
    if isinstance(error, sqlite3.Error):
        if is_damage(error):
            return damaged(path, error)
        return UsageError(f"cannot open SQLite store {path!r}: {error}")
    return error


def busy_timeout_ms(url: str, raw: str) -> float:
    """`?busy_timeout=ms` in seconds: a finite number of milliseconds, 0 or more."""
    try:
        ms = float(raw)
    except ValueError:
        ms = math.nan
    if not (math.isfinite(ms) and ms >= 0):
        raise UsageError(
            f"SQLite store URL {url!r}: busy_timeout is a number of milliseconds, not {raw!r}"
        )
    return ms / 1000


def check_place(path: str) -> None:
    """Before opening: the directory must exist (only `./.podium/` is made), and an existing
    file must not be empty (SQLite would take it for a new database)."""
    file = Path(path)
    parent = file.parent
    if not parent.is_dir():
        if parent.absolute() != Path.cwd() / DEFAULT_DIR:
            raise UsageError(
                f"cannot open SQLite store {path!r}: directory {str(parent)!r} does not exist "
                f"(only ./{DEFAULT_DIR}/ is created on its own)"
            )
        parent.mkdir(exist_ok=True)
    if file.is_file() and file.stat().st_size == 0:
        raise UsageError(
            f"SQLite store {path!r} is an empty file (0 bytes), not a podium store: no run "
            "is in it. Point the store at the right file, or remove this one to start anew"
        )


def create_file(path: str, schema: str) -> None:
    """A new store, built under a temporary name and linked into place whole, so that no
    process ever finds a half-made (or 0-byte) store at `path`. If another process made one
    meanwhile, theirs is kept."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.new")
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(
            f"BEGIN IMMEDIATE;PRAGMA application_id = {APPLICATION_ID};{schema}COMMIT;"
        )
    finally:
        conn.close()
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this file system
        if not target.exists():
            os.rename(tmp, target)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def verify(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a file that is not a podium store, or is damaged, before writing into it."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if app not in (0, APPLICATION_ID) or (app == 0 and tables and "runs" not in tables):
        raise UsageError(
            f"{path!r} is a SQLite database of something else, not a podium store; "
            "point the store at another file"
        )
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise damaged(path, "; ".join(problems))


def is_damage(error: BaseException) -> bool:
    name = getattr(error, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def damaged(path: str, problem: object) -> UsageError:
    text = " ".join(str(problem).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return UsageError(
        f"SQLite store {path!r} is damaged ({text}); podium will not write into it: restore "
        "it from a backup, or salvage what is left with `sqlite3 FILE .recover`"
    )
