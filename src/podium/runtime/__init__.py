"""The agent loop: agent definitions, orchestration patterns, providers and tools."""
