"""The live event feed: NATS (or in-process) messages fanned out to SSE and WebSocket clients."""
