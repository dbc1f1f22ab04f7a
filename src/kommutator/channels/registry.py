"""Channel types by name; the list of them is channels/types/__init__.py (one line per type)."""

from __future__ import annotations

from kommutator.channels.base import ChannelAdapter
from kommutator.errors import ProblemError
from kommutator.ingest.actions import after_accept, file_fetchers

_adapters: dict[str, ChannelAdapter] = {}
_discovered = False


def register(cls: type[ChannelAdapter]) -> type[ChannelAdapter]:
    """Make a channel type available under ``cls.type``."""
    if cls.type in _adapters and type(_adapters[cls.type]) is not cls:
        raise RuntimeError(f"channel type {cls.type!r} registered twice")
    _adapters[cls.type] = adapter = cls()
    file_fetchers[cls.type] = adapter.fetch_file
    return cls


def discover() -> None:
    """Register every channel type listed in channels/types/__init__.py, once (app.py calls it at start; the
    look-ups below call it too, for code that runs without an app: the CLI, benches)."""
    global _discovered
    if _discovered:
        return
    from kommutator.channels.health import note_receive
    from kommutator.channels.types import register_all

    register_all(register)
    after_accept.append(note_receive)
    _discovered = True


def get_adapter(channel_type: str) -> ChannelAdapter:
    discover()
    try:
        return _adapters[channel_type]
    except KeyError:
        raise ProblemError(422, "unknown_channel_type",
                           f"Unknown channel type {channel_type!r}; known: {', '.join(sorted(_adapters))}.") \
            from None


def channel_types() -> dict[str, ChannelAdapter]:
    discover()
    return dict(_adapters)
