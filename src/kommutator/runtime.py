"""The per-process runtime: settings, database, bus and the services built on them, as typed fields.

The services (the socket hub, the router, the bot worker, …) exist once per runtime, not once per call: those
that subscribe to the bus or hold connections must not be doubled. app.py, the composition root, makes them
(through each domain's ``*_of(rt)``, which makes the service on first use and keeps it in its field here).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from kommutator.auth.ratelimit import Limiter
from kommutator.cluster import Cluster
from kommutator.cluster import build as build_cluster
from kommutator.config import Settings
from kommutator.crypto import SecretBox
from kommutator.db import Database
from kommutator.events import Bus

if TYPE_CHECKING:
    import httpx

    from kommutator.assist.service import Suggester
    from kommutator.bot.intent_training import IntentRegistry
    from kommutator.bot.worker import BotWorker
    from kommutator.channels.health import HealthBook
    from kommutator.channels.types.webchat.socket import WidgetHub
    from kommutator.crm.service import CrmEnricher
    from kommutator.ingest.types import ChannelConfig
    from kommutator.outbound.campaign_worker import CampaignWorker
    from kommutator.outbound.worker import OutreachWorker
    from kommutator.privacy.retention import RetentionWorker
    from kommutator.quality.monitor import QualityMonitor
    from kommutator.realtime.hub import Hub
    from kommutator.reports.worker import ReportsWorker
    from kommutator.routing.service import Router
    from kommutator.subscriptions.journal import Journal
    from kommutator.subscriptions.worker import SubscriptionWorker
    from kommutator.workers.owners import Owners


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    box: SecretBox
    login_limiter: Limiter  # password attempts per account and client address (auth/ratelimit.py)
    # What the server processes share (cluster/): the bus above is its bus; presence, limits and pacing.
    cluster: Cluster
    # Services, made once per runtime (see the module's docstring).
    hub: Hub | None = None  # realtime/api.py hub_of
    router: Router | None = None  # routing/service.py router_of
    owners: Owners | None = None  # workers/owners.py owners_of: this process's registration and heartbeat
    bot_worker: BotWorker | None = None  # bot/worker.py bot_worker_of
    intent_models: IntentRegistry | None = None  # bot/intent_training.py intents_of
    quality_monitor: QualityMonitor | None = None  # quality/monitor.py monitor_of
    reports_worker: ReportsWorker | None = None  # reports/worker.py reports_worker_of
    widget_hub: WidgetHub | None = None  # channels/types/webchat/socket.py widget_hub
    channel_health: HealthBook | None = None  # channels/health.py book_of: what this process last wrote
    suggester: Suggester | None = None  # assist/service.py suggester_of: the past-reply index
    outreach_worker: OutreachWorker | None = None  # outbound/worker.py outreach_worker_of
    journal: Journal | None = None  # subscriptions/journal.py journal_of: deliveries written before each commit
    subscription_worker: SubscriptionWorker | None = None  # subscriptions/worker.py subscription_worker_of
    retention_worker: RetentionWorker | None = None  # privacy/retention.py retention_worker_of: daily
    crm_enricher: CrmEnricher | None = None  # crm/service.py crm_enricher_of: asks the CRM about new customers
    campaign_worker: CampaignWorker | None = None  # outbound/campaign_worker.py campaign_worker_of
    # The guarded client for inbound file downloads and polling (ingest.channel_client); closed by the host.
    channel_client: httpx.AsyncClient | None = None
    # Channels with decrypted credentials by id, with the monotonic time they expire (channels/api.py).
    channel_cache: dict[int, tuple[float, ChannelConfig]] = field(default_factory=dict)
    # One OAuth token renewal at a time per channel in this process (channels/signin.py).
    oauth_renewals: dict[int, asyncio.Lock] = field(default_factory=dict)
    # When each (user, token, subject type, subject id) read of personal data was last audited (audit/actions.py).
    audit_reads: dict[tuple[Any, ...], float] = field(default_factory=dict)
    # Settings the bot's flows may read (``settings.*`` in a flow), e.g. the demo's CRM address.
    bot_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        cluster = build_cluster(settings)
        bus = cluster.bus
        return cls(
            settings=settings,
            db=Database(settings.database_url, bus=bus, echo=settings.db_echo),
            bus=bus,
            box=SecretBox(settings.secret_key),
            login_limiter=cluster.limiter("login", settings.login_attempts_per_minute),
            cluster=cluster,
        )


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
