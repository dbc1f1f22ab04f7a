"""Live updates to agents' screens over WebSocket."""
