"""podium speaking other people's protocols: MCP (tools in, workflows out) and A2A (agents both
ways). Each module imports its SDK lazily, so the core install stays light."""
