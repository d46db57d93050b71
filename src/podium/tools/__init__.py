"""Tools: Python functions an agent or a model uses through the door (`ctx.use`), and MCP
servers' tools as podium tools (`MCPServer`, the `mcp` extra)."""

from podium.core.tools import ToolContext
from podium.tools.mcp import MCPServer, MCPTool
from podium.tools.tool import Tool, parse_docstring, sanitiser, tool

__all__ = ["MCPServer", "MCPTool", "Tool", "ToolContext", "parse_docstring", "sanitiser", "tool"]
