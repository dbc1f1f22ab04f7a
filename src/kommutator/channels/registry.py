"""Channel types register here by name; every package under kommutator.channels.types is discovered."""

from __future__ import annotations

import importlib
import pkgutil

from kommutator.channels.base import ChannelAdapter
from kommutator.errors import ProblemError
from kommutator.ingest.actions import file_fetchers

_adapters: dict[str, ChannelAdapter] = {}
_discovered = False


def register(cls: type[ChannelAdapter]) -> type[ChannelAdapter]:
    """Class decorator: make a channel type available under ``cls.type``."""
    if cls.type in _adapters and type(_adapters[cls.type]) is not cls:
        raise RuntimeError(f"channel type {cls.type!r} registered twice")
    _adapters[cls.type] = adapter = cls()
    file_fetchers[cls.type] = adapter.fetch_file
    return cls


def discover() -> None:
    """Import every channel package once so that their @register runs."""
    global _discovered
    if _discovered:
        return
    import kommutator.channels.types as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg:
            importlib.import_module(f"{pkg.__name__}.{info.name}")
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
