"""`python -m examples.mcp_files [--root DIR]`: index the notes in a folder through MCP."""

from examples import run_example

raise SystemExit(run_example("examples.mcp_files.flow"))
