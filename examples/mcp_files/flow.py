"""MCP files: an agent that indexes a folder of notes through a filesystem MCP server.

archivist (LLMAgent, scripted offline)
└── tools: the `files` MCP server (fs_server.py, a subprocess confined to the notes folder)
    ├── files_list_dir     read-only
    ├── files_read_file    read-only (one call per note, all in one turn)
    └── files_write_file   a side effect: INDEX.md

The model is a `ScriptedModel` that decides from the messages alone (so a resumed run takes
the same path): list the folder, read every `.txt` note, write `INDEX.md` with each note's
first line, answer. Every tool call is a journaled step through the door.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import LLMAgent, MCPServer, RunResult, Runtime, ScriptedModel
from podium.models.base import Message, ToolCall
from podium.models.scripted import tool_call

HERE = Path(__file__).resolve().parent
MODEL_LABEL = "scripted (offline: ScriptedModel reading the tool results)"
SAMPLE_NOTES = {
    "groceries.txt": "Groceries for Saturday\n- eggs\n- bread\n",
    "ideas.txt": "Ideas: a podium workflow that files receipts\n",
    "meeting.txt": "Meeting with Ada on Tuesday at 10\nbring the budget\n",
}


def notes_root() -> Path:
    """The folder the server may touch: `MCP_FILES_ROOT`, else ./.podium/mcp_files/."""
    return Path(os.environ.get("MCP_FILES_ROOT") or Path(".podium") / "mcp_files")


def files_server(root: Path) -> MCPServer:
    return MCPServer(
        [sys.executable, str(HERE / "fs_server.py"), "--root", str(root)],
        prefix="files_",
        timeout=30,
    )


def archivist_model(messages: Sequence[Message], tools: Any, schema: Any) -> Any:
    """What a model would do, decided from the conversation: list, read each note, write the
    index, answer."""
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    calls = [tc for m in messages if m.role == "assistant" for tc in m.tool_calls]
    by_name: dict[str, list[ToolCall]] = {}
    for tc in calls:
        by_name.setdefault(tc.name, []).append(tc)
    if "files_list_dir" not in by_name:
        return tool_call("files_list_dir", path=".")
    listing = _value(results[by_name["files_list_dir"][0].id])
    notes = [n for n in listing if n.endswith(".txt")]
    if "files_read_file" not in by_name and notes:
        return [tool_call("files_read_file", path=n) for n in notes]
    if "files_write_file" not in by_name:
        reads = by_name.get("files_read_file", [])
        lines = [
            f"- {tc.arguments['path']}: {results[tc.id].splitlines()[0]}"
            for tc in reads
            if results[tc.id].strip()
        ]
        return tool_call(
            "files_write_file", path="INDEX.md", text="# Notes\n" + "\n".join(lines) + "\n"
        )
    return f"Indexed {len(by_name.get('files_read_file', []))} notes into INDEX.md."


def _value(text: str) -> list[str]:
    """A listing as the model read it: a JSON list of names."""
    return list(json.loads(text))


def build_flow(root: Path) -> LLMAgent:
    return LLMAgent(
        "archivist",
        model=ScriptedModel(archivist_model),
        instructions="Index the notes in the folder: one line per note, in INDEX.md.",
        tools=[files_server(root)],
    )


def seed(root: Path) -> None:
    """Sample notes, the first time."""
    root.mkdir(parents=True, exist_ok=True)
    if not any(root.glob("*.txt")):
        for name, text in SAMPLE_NOTES.items():
            (root / name).write_text(text, encoding="utf-8")


# The agent on the default folder, at module level so that any process can resume its runs
# (`podium resume RUN` finds it by its target, examples.mcp_files.flow:archivist). Nothing
# starts here: the server is started by the first run that lists its tools.
archivist = build_flow(notes_root())


async def index_notes(root: Path, store: str | None = None) -> RunResult:
    seed(root)
    agent = archivist if root == notes_root() else build_flow(root)
    async with Runtime(store) as rt:  # closing it ends the server podium started
        return await rt.run(agent, f"index the notes in {root}")


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.mcp_files [--root DIR] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.mcp_files")
    parser.add_argument("--root", help="the notes folder ($MCP_FILES_ROOT, ./.podium/mcp_files)")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    root = Path(args.root) if args.root else notes_root()
    result = asyncio.run(index_notes(root, args.store))
    if result.ok:
        print(result.output)
        print((root / "INDEX.md").read_text(encoding="utf-8"), end="")
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"model: {MODEL_LABEL}")
    print(f"run {result.run_id} {result.status}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
