"""A small filesystem MCP server, confined to one folder, made with the official MCP SDK.

    python fs_server.py --root DIR        # MCP over stdin/stdout

Tools: `list_dir` and `read_file` (hinted read-only: podium treats them as having no side
effect), and `write_file` (a side effect, hinted idempotent: writing the same text twice
leaves the same file). Every path is relative to the root; one that resolves outside it
(`../x`, an absolute path, a symlink out) is refused with an error result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)


def confined(root: Path, path: str) -> Path:
    """`path` inside `root`, or a refusal naming it."""
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ToolError(f"{path!r} is outside the folder this server may touch")
    return target


def make_server(root: Path) -> MCPServer:
    root = root.resolve()
    server = MCPServer("files", instructions=f"Files under {root}, and nothing else.")

    @server.tool(annotations=READ_ONLY)
    def list_dir(path: str = ".") -> list[str]:
        """The names in a folder (folders end with `/`), sorted.

        Args:
            path: The folder, relative to the root.
        """
        folder = confined(root, path)
        if not folder.is_dir():
            raise ToolError(f"{path!r} is not a folder")
        return sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())

    @server.tool(annotations=READ_ONLY)
    def read_file(path: str) -> str:
        """A text file's content.

        Args:
            path: The file, relative to the root.
        """
        target = confined(root, path)
        if not target.is_file():
            raise ToolError(f"{path!r} is not a file")
        return target.read_text(encoding="utf-8")

    @server.tool(annotations=ToolAnnotations(idempotent_hint=True, destructive_hint=True))
    def write_file(path: str, text: str) -> str:
        """Write a text file (replacing it), making its folder if needed.

        Args:
            path: The file, relative to the root.
            text: Its new content.
        """
        target = confined(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return f"wrote {len(text.encode())} bytes to {path}"

    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="fs_server.py")
    parser.add_argument("--root", required=True, help="the only folder the server may touch")
    make_server(Path(parser.parse_args().root)).run()
