"""Tools: Python functions an agent or a model uses through the door (`ctx.use`)."""

from podium.core.tools import ToolContext
from podium.tools.tool import Tool, parse_docstring, sanitiser, tool

__all__ = ["Tool", "ToolContext", "parse_docstring", "sanitiser", "tool"]
