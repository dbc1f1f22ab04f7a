"""Outbound HTTP through the guard: every provider client, webhook, bot call, file download and alert."""

from __future__ import annotations

import httpx

from kommutator import __version__
from kommutator.config import Settings
from kommutator.net.guard import STRICT, OutboundGuard


class GuardedTransport(httpx.AsyncBaseTransport):
    """Send only where the guard allows, pinned to the checked address.

    The host is resolved once here, every address checked, and the request sent to the first checked
    address (TLS still verifies the name, given as SNI), so the connection cannot be re-resolved to
    another address. A refused target raises OutboundRefused, a SendError that is not retryable.
    """

    def __init__(self, *, guard: OutboundGuard | None = None, allow_hosts: list[str] | None = None,
                 inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.guard = guard or (OutboundGuard(allow_hosts) if allow_hosts else STRICT)
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            addresses = await self.guard.resolve(host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
        pinned = str(addresses[0])
        if pinned != host:
            # The Host header was set from the original URL when the request was built.
            request.url = request.url.copy_with(host=pinned)
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedClient(httpx.AsyncClient):
    """An httpx client whose transport is guarded; ``guard`` serves the same rules to SMTP and IMAP."""

    def __init__(self, guard: OutboundGuard, **kwargs: object) -> None:
        super().__init__(transport=GuardedTransport(guard=guard), **kwargs)  # type: ignore[arg-type]
        self.guard = guard


def outbound_client(settings: Settings, *, timeout: float = 15.0,
                    guard: OutboundGuard | None = None) -> GuardedClient:
    """The HTTP client for every outbound request: guarded, no redirects, no proxies from the environment."""
    return GuardedClient(
        guard or OutboundGuard(settings.outbound_allow_hosts),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False, trust_env=False,
        headers={"user-agent": f"Kommutator/{__version__}"})


def guard_of(client: httpx.AsyncClient | None) -> OutboundGuard:
    """The guard behind a client (for the mail protocols beside it); the strictest when it has none."""
    return client.guard if isinstance(client, GuardedClient) else STRICT
