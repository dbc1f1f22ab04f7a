"""What the server processes of one installation share: events, presence, rate limits and outbound pacing.

``LocalCluster`` (local.py) is one process on its own, the default with no Redis; ``RedisCluster`` (redis.py) is
any number of processes sharing one Redis (``KOMMUTATOR_REDIS_URL``). base.py is the interface both implement;
``build`` picks one from the settings. See docs/deployment.md.
"""

from __future__ import annotations

from kommutator.cluster.base import Cluster, Pacing, Presence
from kommutator.cluster.local import LocalCluster
from kommutator.cluster.redis import RedisCluster
from kommutator.config import Settings


def build(settings: Settings) -> Cluster:
    """The cluster the settings ask for: Redis when ``redis_url`` is set, else this process alone."""
    if settings.redis_url:
        return RedisCluster(settings.redis_url, prefix=settings.redis_prefix)
    return LocalCluster()


__all__ = ["Cluster", "LocalCluster", "Pacing", "Presence", "RedisCluster", "build"]
