"""A podium workflow served over MCP: refunds quoted at once, and paid once a person
approves them, reached from an MCP client with the official SDK. See README.md."""
