"""`python -m MODULE ARGS` for tests, in a real child process, without paying each time for a
new interpreter and for importing podium (~0.5-1 s a call, and the CLI tests make dozens).

    done = run_module("podium", "run", "agents.py:shout", cwd=tmp_path, env=env)

A helper process (one per test process) starts once, imports podium, and forks a
child per call. The child takes the call's working directory, environment, `sys.argv` and
`sys.path` (the directory first, then the environment's `PYTHONPATH`, as `python -m` would),
gets /dev/null as stdin and files as stdout and stderr, and runs the module as `__main__`;
its exit code, output and error are what `subprocess.run(..., capture_output=True,
text=True)` would give. A call whose environment sets interpreter options (`PYTHON*` other
than `PYTHONPATH`) differently from the helper's runs as a plain subprocess instead, and so
does every call where `os.fork` does not exist.

`spawn_module` starts one the same way and returns at once, with what the tests use of
`subprocess.Popen` (poll, wait, kill, send_signal, communicate): for tests that start worker
processes and SIGKILL them, many times over.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

_HELPER = r"""
import json, os, sys
req, resp = os.dup(0), os.dup(1)
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(null, 1)
import atexit, runpy, signal, threading, traceback, warnings
# What every call would import, paid once here; not podium.cli itself, whose commands
# register in the order of its imports, which `python -m podium.cli.app` changes.
import podium, typer, typer.rich_utils

base = [p for p in sys.path if p and p not in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
reader = os.fdopen(req, "rb", buffering=0)

def child(call):
    os.close(req)
    os.close(resp)
    os.chdir(call["cwd"])
    os.environ.clear()
    os.environ.update(call["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, call["out"], os.O_WRONLY | os.O_TRUNC),
                            (2, call["err"], os.O_WRONLY | os.O_TRUNC)):
        f = os.open(path, flags)
        os.dup2(f, fd)
        os.close(f)
    extra = [p for p in call["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [os.getcwd(), *extra, *base]
    sys.argv = ["-m", *call["args"]]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package")
    code = 0
    try:
        runpy._run_module_as_main(call["module"], alter_argv=True)  # what `python -m` calls
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)

line = b""
while True:
    chunk = reader.read(65536)
    if not chunk:
        break
    line += chunk
    while b"\n" in line:
        raw, line = line.split(b"\n", 1)
        call = json.loads(raw)
        pid = os.fork()
        if pid == 0:
            child(call)
        os.write(resp, f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(resp, f"{os.waitstatus_to_exitcode(status)}\n".encode())
"""

_lock = threading.Lock()
_helper: subprocess.Popen[bytes] | None = None
_helper_env: dict[str, str] = {}


def _interpreter_options(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONPATH"}


def _start() -> subprocess.Popen[bytes]:
    global _helper, _helper_env
    if _helper is None or _helper.poll() is not None:
        _helper_env = dict(os.environ)
        _helper = subprocess.Popen(
            [sys.executable, "-c", _HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_helper_env,
        )
        atexit.register(_stop, _helper)
    return _helper


def _stop(helper: subprocess.Popen[bytes]) -> None:
    if helper.poll() is None:
        helper.kill()
        helper.wait()


def _read_line(helper: subprocess.Popen[bytes], timeout: float | None) -> str | None:
    assert helper.stdout is not None
    fd = helper.stdout.fileno()
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError("the fork helper died")
        data += chunk
    return data.decode().strip()


def _text(data: bytes) -> str:
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _ask(
    helper: subprocess.Popen[bytes],
    module: str,
    args: Sequence[str],
    cwd: str | Path,
    env: Mapping[str, str],
    out: Path,
    err: Path,
) -> None:
    """Tell the helper to fork a child running `python -m module args` with these streams."""
    call = {
        "module": module,
        "args": list(args),
        "cwd": str(Path(cwd).resolve()),
        "env": dict(env),
        "out": str(out),
        "err": str(err),
    }
    assert helper.stdin is not None
    helper.stdin.write(json.dumps(call).encode() + b"\n")
    helper.stdin.flush()


def _must_spawn(env: Mapping[str, str]) -> bool:
    """A plain subprocess instead of a fork: while another forked child runs, where there is
    no fork, or when the interpreter options asked for differ from the helper's."""
    helper_env = _helper_env if _helper is not None else os.environ
    return (
        _busy is not None
        or not hasattr(os, "fork")
        or _interpreter_options(env) != _interpreter_options(helper_env)
    )


def run_module(
    module: str,
    *args: str,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
    capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)`, forked."""
    env = dict(os.environ if env is None else env)
    argv = [sys.executable, "-m", module, *args]
    with _lock:
        if _must_spawn(env):
            return subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        helper = _start()
        with tempfile.TemporaryDirectory(prefix="podium-forked-") as tmp:
            out, err = Path(tmp, "out"), Path(tmp, "err")
            out.touch()
            err.touch()
            _ask(helper, module, args, cwd, env, out, err)
            pid = int(_read_line(helper, 30) or "0")
            status = _read_line(helper, timeout)
            if status is None:
                os.kill(pid, signal.SIGKILL)
                _read_line(helper, 30)
                raise subprocess.TimeoutExpired(argv, timeout, out.read_bytes(), err.read_bytes())
            return subprocess.CompletedProcess(
                argv, int(status), _text(out.read_bytes()), _text(err.read_bytes())
            )


class Forked:
    """A child forked by `spawn_module`, as much of `subprocess.Popen` as the tests use."""

    def __init__(self, argv: list[str], pid: int, tmp: tempfile.TemporaryDirectory[str]) -> None:
        self.args = argv
        self.pid = pid
        self.returncode: int | None = None
        self._tmp = tmp

    def _reap(self, timeout: float | None) -> int | None:
        global _busy
        if self.returncode is None:
            assert _helper is not None
            status = _read_line(_helper, timeout)
            if status is None:
                return None
            self.returncode = int(status)
            _busy = None
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._reap(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        out = _text(Path(self._tmp.name, "out").read_bytes())
        err = _text(Path(self._tmp.name, "err").read_bytes())
        self._tmp.cleanup()
        return out, err


_busy: Forked | None = None  # the helper waits for this child before it forks another


def spawn_module(
    module: str, *args: str, cwd: str | Path, env: Mapping[str, str] | None = None
) -> Forked | subprocess.Popen[str]:
    """`subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env,
    stdout=PIPE, stderr=PIPE, text=True)`, forked: poll, wait, kill, send_signal and
    communicate work alike. One forked child at a time; while it runs, a plain Popen."""
    global _busy
    env = dict(os.environ if env is None else env)
    argv = [sys.executable, "-m", module, *args]
    with _lock:
        if _must_spawn(env):
            return subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        helper = _start()
        tmp = tempfile.TemporaryDirectory(prefix="podium-forked-")
        out, err = Path(tmp.name, "out"), Path(tmp.name, "err")
        out.touch()
        err.touch()
        _ask(helper, module, args, cwd, env, out, err)
        child = Forked(argv, int(_read_line(helper, 30) or "0"), tmp)
        _busy = child
        return child
