"""`podium a2a serve` with API keys: the card stays public and says it wants a bearer key;
every other request needs a known key, and its role decides what it may do."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import UnsupportedOperationError
from a2a_procs import podium_serve, stop

from podium import NO_RETRY, Decision, RemoteAgent, Runtime

pytestmark = pytest.mark.xdist_group("a2a_keys")

KEYS = {
    "viewer": "viewer-key-0123456789abcdef",
    "operator": "operator-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    store = f"sqlite:///{tmp_path_factory.mktemp('keys') / 'runs.db'}"
    keys = ",".join(f"{key}:{role}:{role}-1" for role, key in KEYS.items())
    proc, url = podium_serve("served.py:desk", store, PODIUM_API_KEYS=keys)
    try:
        yield url, store
    finally:
        stop(proc)


async def test_the_card_is_public_and_asks_for_a_bearer_key(guarded: tuple[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, guarded[0]).get_agent_card()
        scheme = card.security_schemes["bearer"].http_auth_security_scheme
        assert scheme.scheme == "bearer" and "bearer" in card.security_requirements[0].schemes
        unkeyed = await http.post(guarded[0], json={"jsonrpc": "2.0", "id": 1, "method": "x"})
        assert unkeyed.status_code == 401


async def test_a_remote_agent_sends_its_key(
    guarded: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, store = guarded
    desk = RemoteAgent(url, name="desk", token_env="DESK_KEY", poll_interval=0.05)
    async with Runtime("memory://", retry=NO_RETRY) as rt:
        monkeypatch.setenv("DESK_KEY", "not-a-key-of-the-server")
        refused = await rt.run(desk, "hello")
        assert refused.status == "failed" and "401" in (refused.error or "")
        monkeypatch.setenv("DESK_KEY", KEYS["operator"])
        assert (await rt.run(desk, "hello")).output == "HELLO!"
        # an operator may start work, not decide it: the reply is refused
        asked = await rt.run(desk, "ask")
        denied = await rt.resume(asked.run_id, desk, decision=Decision.answer("red"))
        assert denied.status == "failed" and "may not decide" in (denied.error or "")
        monkeypatch.setenv("DESK_KEY", KEYS["admin"])
        asked = await rt.run(desk, "ask")
        done = await rt.resume(asked.run_id, desk, decision=Decision.answer("red"))
        assert done.output == "colour red"
    async with Runtime(store) as far:  # the decision is recorded with the key's identity
        sent = next(s for s in await rt.steps(asked.run_id) if s.agent == "desk.send")
        decided = [
            s.output for s in await far.steps(sent.output["id"]) if s.agent.endswith("decision")
        ]
        assert decided[0]["identity"] == "a2a:admin-1"


async def test_a_viewer_reads_but_does_not_send(guarded: tuple[str, str]) -> None:
    headers = {"Authorization": f"Bearer {KEYS['viewer']}"}
    async with httpx.AsyncClient(headers=headers) as http:
        card = await A2ACardResolver(http, guarded[0]).get_agent_card()
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        listed = await client.list_tasks(pb.ListTasksRequest(page_size=10))
        assert listed is not None
        message = pb.Message(message_id="v1", role=pb.Role.ROLE_USER, parts=[pb.Part(text="x")])
        with pytest.raises(UnsupportedOperationError, match="may not operate"):
            _ = [r async for r in client.send_message(pb.SendMessageRequest(message=message))]
