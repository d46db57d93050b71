"""A tiny A2A agent written with the official SDK alone (no podium), for `RemoteAgent` tests.

    python tests/protocols/sdk_agent.py COUNT_FILE [--card-url URL]

It listens on a free loopback port and prints `listening URL` once it does. Each message it
receives appends one line to COUNT_FILE (so a test can count sends). What it does with a
message's text:

    ask ...     input-required ("which colour?"); the reply completes it with "got: REPLY"
    slow N ...  works N seconds, then completes with "slow done"
    data        completes with a data artifact {"n": 1, "ok": true}
    fail        fails, with the message "told to fail"
    anything    completes with the text upper-cased

`--card-url` makes the card claim another endpoint (a pinning test's impostor); with
`--token T` every request needs `Authorization: Bearer T` (else 401).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import new_data_part, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse


class Executor(AgentExecutor):
    def __init__(self, count_file: str) -> None:
        self.count_file = count_file

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        with open(self.count_file, "a") as f:
            f.write(context.get_user_input().replace("\n", " ") + "\n")
        task_id = context.task_id or ""
        context_id = context.context_id or ""
        task = context.current_task
        if task is None:
            task = Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                history=[context.message] if context.message else [],
            )
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task_id, context_id)
        text = context.get_user_input()
        asked = task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        if asked:
            await updater.add_artifact([new_text_part(f"got: {text}")])
            await updater.complete()
            return
        await updater.start_work()
        if text.startswith("ask"):
            await updater.requires_input(
                new_text_message("which colour?", context_id=context_id, task_id=task_id)
            )
        elif text.startswith("slow"):
            await asyncio.sleep(float(text.split()[1]))
            await updater.add_artifact([new_text_part("slow done")])
            await updater.complete()
        elif text == "data":
            await updater.add_artifact([new_data_part({"n": 1, "ok": True})])
            await updater.complete()
        elif text == "fail":
            await updater.failed(new_text_message("told to fail", task_id=task_id))
        else:
            await updater.add_artifact([new_text_part(text.upper())])
            await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel()


def _needs(token: str) -> Any:
    async def check(request: Request, call_next: Any) -> Any:
        if request.headers.get("authorization") != f"Bearer {token}":
            return PlainTextResponse("unauthorized", status_code=401)
        return await call_next(request)

    return check


def main() -> None:
    count_file = sys.argv[1]
    claimed = sys.argv[sys.argv.index("--card-url") + 1] if "--card-url" in sys.argv else None
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    card = AgentCard(
        name="shouter",
        description="upper-cases text; asks when told to",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=claimed or url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="shout", name="shout", description="upper-cases", tags=["text"])],
    )
    handler = DefaultRequestHandler(Executor(count_file), InMemoryTaskStore(), card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])
    if "--token" in sys.argv:
        token = sys.argv[sys.argv.index("--token") + 1]
        app.add_middleware(BaseHTTPMiddleware, dispatch=_needs(token))
    print(f"listening {url}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
