"""`python -m examples.mcp_server`: list and call the refund tools over MCP (stdio)."""

from examples import run_example

raise SystemExit(run_example("examples.mcp_server.client"))
