"""`RemoteAgent` against an A2A agent written with the official SDK alone (a subprocess on a
free loopback port): output, journaled steps, input-required, failures, transport errors,
pinning, trust, taint, YAML `kind: remote`, and a SIGKILL mid-call that does not send twice."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from a2a_procs import HERE, env, kill_mid_call_then_resume, start, stop

from podium import (
    NO_RETRY,
    Decision,
    PolicyDeniedError,
    ProviderError,
    RemoteAgent,
    Retry,
    Runtime,
    Sequential,
    StepError,
)
from podium.agents.remote import Trust, lower_trust
from podium.spec.loader import load_yaml

pytestmark = pytest.mark.xdist_group("a2a_remote")  # one worker, one shared server

SDK_AGENT = str(HERE / "sdk_agent.py")


class Remote:
    def __init__(self, url: str, count: Path) -> None:
        self.url = url
        self.count = count

    def sent(self) -> list[str]:
        return self.count.read_text().splitlines() if self.count.exists() else []


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    count = tmp_path_factory.mktemp("sdk") / "sent.txt"
    proc, url = start([SDK_AGENT, str(count)])
    try:
        yield Remote(url, count)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def impostor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An agent whose card claims an endpoint elsewhere."""
    count = tmp_path_factory.mktemp("impostor") / "sent.txt"
    proc, url = start([SDK_AGENT, str(count), "--card-url", "http://evil.example:8080/"])
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An agent that wants a bearer token."""
    count = tmp_path_factory.mktemp("guarded") / "sent.txt"
    proc, url = start([SDK_AGENT, str(count), "--token", "s3cret"])
    try:
        yield url
    finally:
        stop(proc)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium", *args], capture_output=True, text=True, env=env()
    )


async def test_a_remote_agent_answers_through_journaled_steps(remote: Remote) -> None:
    shouter = RemoteAgent(remote.url, name="shouter", poll_interval=0.05)
    async with Runtime("memory://") as rt:
        result = await rt.run(Sequential("flow", [shouter]), "hello there")
        assert result.output == "HELLO THERE"
        steps = {s.agent: s for s in await rt.steps(result.run_id)}
        assert {"shouter.card", "shouter.send"} <= set(steps)
        assert steps["shouter.card"].output["card"]["name"] == "shouter"
        data = await rt.run(shouter, "data")
        assert data.output == {"n": 1, "ok": True}


async def test_input_required_makes_the_run_wait_for_a_person(remote: Remote) -> None:
    shouter = RemoteAgent(remote.url, name="shouter", poll_interval=0.05)
    async with Runtime("memory://") as rt:
        waiting = await rt.run(shouter, "ask for a colour")
        assert waiting.status == "waiting"
        (asked,) = await rt.inbox()
        assert asked.request["prompt"] == "which colour?"
        done = await rt.resume(waiting.run_id, shouter, decision=Decision.answer("blue"))
        assert (done.status, done.output) == ("completed", "got: blue")
        rejected = await rt.run(shouter, "ask again")
        gone = await rt.resume(rejected.run_id, shouter, decision=Decision.reject("no"))
        assert gone.status == "failed" and "no" in (gone.error or "")
        steps = {s.agent: s.output for s in await rt.steps(rejected.run_id)}
        assert steps["shouter.cancel"]["state"] == "canceled"  # not left waiting over there


async def test_a_failed_remote_task_fails_the_call(remote: Remote) -> None:
    async with Runtime("memory://", retry=NO_RETRY) as rt:
        result = await rt.run(RemoteAgent(remote.url, name="shouter"), "fail")
        assert result.status == "failed" and "is failed: told to fail" in (result.error or "")


async def test_a_broken_connection_is_a_provider_error_and_retried() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    retry = Retry(attempts=3, initial_delay=0.01, max_delay=0.01, jitter=False)
    nobody = RemoteAgent(url, name="nobody", retry=retry)
    async with Runtime("memory://") as rt:
        result = await rt.run(nobody, "hi")
        assert result.status == "failed"
        assert isinstance(result.exception, StepError)
        assert isinstance(result.exception.cause, ProviderError)
        retried = [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]
        assert len(retried) == 2


async def test_a_call_past_its_timeout_is_not_sent_again(remote: Remote) -> None:
    retry = Retry(attempts=3, initial_delay=0.01, max_delay=0.01, jitter=False)
    hasty = RemoteAgent(remote.url, name="hasty", timeout=0.3, retry=retry)
    async with Runtime("memory://") as rt:
        result = await rt.run(hasty, "slow 1 hasty")
        assert result.status == "failed" and "timed out" in (result.error or "")
    assert remote.sent().count("slow 1 hasty") == 1


async def test_a_missing_card_is_not_retried(remote: Remote) -> None:
    retry = Retry(attempts=3, initial_delay=0.01, max_delay=0.01, jitter=False)
    lost = RemoteAgent(remote.url + "nobody-here/", name="lost", retry=retry)
    async with Runtime("memory://") as rt:
        result = await rt.run(lost, "hi")
        assert result.status == "failed" and "404" in (result.error or "")
        assert not isinstance(result.exception.cause, ProviderError)
        assert not [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]


async def test_a_card_off_its_origin_is_refused(impostor: str) -> None:
    async with Runtime("memory://") as rt:
        result = await rt.run(RemoteAgent(impostor, name="impostor"), "hi")
        assert isinstance(result.exception, PolicyDeniedError)
        assert result.exception.rule == "a2a.pin"
        assert "evil.example" in str(result.exception)
        assert not [e for e in await rt.events(result.run_id) if e.kind == "step.retried"]


async def test_pin_url_and_card_sha256(remote: Remote) -> None:
    shown = cli("a2a", "card", remote.url)
    assert shown.returncode == 0, shown.stderr
    digest = json.loads(shown.stdout)["sha256"]
    async with Runtime("memory://") as rt:
        good = RemoteAgent(remote.url, name="s1", pin_url=remote.url, card_sha256=digest)
        assert (await rt.run(good, "pinned")).output == "PINNED"
        other = remote.url.replace("127.0.0.1", "localhost")
        moved = await rt.run(RemoteAgent(remote.url, name="s2", pin_url=other), "x")
        assert isinstance(moved.exception, PolicyDeniedError) and "not the pinned" in moved.error
        wrong = await rt.run(RemoteAgent(remote.url, name="s3", card_sha256="0" * 64), "x")
        assert wrong.exception.rule == "a2a.pin" and "sha256" in (wrong.error or "")


async def test_lowered_trust_takes_effect(remote: Remote, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    shouter = RemoteAgent(remote.url, name="shouter", poll_interval=0.05)
    async with Runtime(store) as rt:
        assert (await rt.run(shouter, "before")).output == "BEFORE"
        # another process lowers it to approval: the next call waits for a person
        assert cli("a2a", "trust", "shouter", "approval", "--store", store).returncode == 0
        sent = len(remote.sent())
        waiting = await rt.run(shouter, "approve me")
        assert waiting.status == "waiting" and len(remote.sent()) == sent  # nothing sent yet
        done = await rt.resume(waiting.run_id, shouter, decision=Decision.approve())
        assert done.output == "APPROVE ME"
        assert cli("a2a", "trust", "shouter", "denied", "--store", store).returncode == 0
        denied = await rt.run(shouter, "never")
        assert isinstance(denied.exception, PolicyDeniedError)
        assert denied.exception.rule == "a2a.trust" and "never" not in remote.sent()
        # the API lowers only: asking for more trust than the store's changes nothing
        assert await lower_trust(await rt.open(), "shouter", "untrusted") == Trust.DENIED
    assert cli("a2a", "trust", "shouter", "nonsense", "--store", store).returncode == 2
    other = RemoteAgent(remote.url, name="other")
    assert other.lower_trust("denied") == Trust.DENIED
    assert other.lower_trust("untrusted") == Trust.DENIED
    async with Runtime("memory://") as rt:
        result = await rt.run(other, "x")
        assert isinstance(result.exception, PolicyDeniedError)


async def test_the_output_is_labelled_untrusted(remote: Remote) -> None:
    shouter = RemoteAgent(remote.url, name="shouter", poll_interval=0.05)
    async with Runtime("memory://", taint=True) as rt:
        result = await rt.run(Sequential("flow", [shouter]), "label me")
        labels = [e for e in await rt.events(result.run_id) if e.kind == "taint.label"]
        assert "/flow/shouter#0" in {e.key for e in labels}


async def test_yaml_kind_remote(remote: Remote, tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"name: flow\nkind: sequential\nsteps:\n"
        f"  - kind: remote\n    name: shouter\n    url: {remote.url}\n    poll_interval: 0.05\n"
        f"    retry: {{attempts: 2}}\n"
    )
    agent = load_yaml(flow)
    (shouter,) = agent.steps
    assert isinstance(shouter, RemoteAgent) and shouter.hop_retry.attempts == 2
    async with Runtime("memory://") as rt:
        assert (await rt.run(agent, "from yaml")).output == "FROM YAML"
    ran = cli("run", str(flow), "--input", '"from the cli"', "--store", "memory://")
    assert ran.returncode == 0, ran.stderr
    assert "FROM THE CLI" in ran.stdout


@pytest.mark.slow  # real processes, one killed
def test_sigkill_mid_call_then_resume_does_not_send_twice(remote: Remote, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    resumed = kill_mid_call_then_resume(store, "crash-1", remote.url, "slow 2 kill")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["completed", "slow", "done"]
    assert remote.sent().count("slow 2 kill") == 1


async def test_a_bearer_token_from_the_environment(
    guarded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed = RemoteAgent(guarded, name="keyed", token_env="KEYED_TOKEN", poll_interval=0.05)
    async with Runtime("memory://", retry=NO_RETRY) as rt:
        unset = await rt.run(keyed, "hi")
        assert "KEYED_TOKEN (its token_env) is not set" in (unset.error or "")
        monkeypatch.setenv("KEYED_TOKEN", "wrong")
        refused = await rt.run(keyed, "hi")
        assert "401" in (refused.error or "")
        monkeypatch.setenv("KEYED_TOKEN", "s3cret")
        result = await rt.run(keyed, "with a token")
        assert result.output == "WITH A TOKEN"
        journal = str([s.output for s in await rt.steps(result.run_id)])
        assert "s3cret" not in journal
