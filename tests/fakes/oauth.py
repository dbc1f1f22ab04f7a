"""A fake OAuth 2.0 provider on 127.0.0.1 (authorization code with PKCE, refresh tokens that rotate), speaking the
token endpoint as Google and Microsoft do (RFC 6749 form posts, JSON answers, ``invalid_grant`` on a revoked or
reused grant). The consent page is the test's part: ``consent(authorize_url)`` checks what a provider checks
and returns the code it would put on the redirect."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from .serving import Served

CLIENT_ID = "kommutator-test.apps.example"
CLIENT_SECRET = "client-secret-7"


@dataclass
class _Code:
    challenge: str
    redirect_uri: str
    scope: str


class FakeOAuth:
    def __init__(self, *, lifetime: int = 3600) -> None:
        self.url = ""
        self.lifetime = lifetime
        self.codes: dict[str, _Code] = {}
        self.refresh_tokens: set[str] = set()  # valid now
        self.access_tokens: set[str] = set()  # valid now
        self.requests: list[dict[str, str]] = []  # every token request's form
        self.revoked = False
        self._http = Served()

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.url}/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/token"

    def consent(self, authorize_url: str) -> tuple[str, dict[str, str]]:
        """The user signs in and allows access: the code, and the query the consent page was opened with."""
        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.authorize_endpoint, authorize_url
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID, query
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43, query
        code = secrets.token_urlsafe(16)
        self.codes[code] = _Code(query["code_challenge"], query["redirect_uri"], query["scope"])
        return code, query

    def revoke(self) -> None:
        """The user removed the application's access (or changed the password)."""
        self.revoked = True
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def _issue(self) -> dict[str, Any]:
        access, refresh = "ya29." + secrets.token_urlsafe(24), "1//" + secrets.token_urlsafe(24)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.lifetime,
                "token_type": "Bearer", "scope": "https://mail.google.com/"}

    async def _token(self, request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(form)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client", "error_description": "The OAuth client was not found."},
                                status_code=401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            pending = self.codes.pop(form.get("code", ""), None)
            if pending is None or self.revoked:
                return JSONResponse({"error": "invalid_grant", "error_description": "Malformed auth code."},
                                    status_code=400)
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != pending.challenge:
                return JSONResponse({"error": "invalid_grant", "error_description": "Invalid code verifier."},
                                    status_code=400)
            if form.get("redirect_uri") != pending.redirect_uri:
                return JSONResponse({"error": "redirect_uri_mismatch"}, status_code=400)
            return JSONResponse(self._issue())
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if token not in self.refresh_tokens:
                return JSONResponse({"error": "invalid_grant", "error_description": "Token has been expired or "
                                                                                    "revoked."}, status_code=400)
            self.refresh_tokens.discard(token)  # rotated, as Microsoft does
            return JSONResponse(self._issue())
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

    async def _authorize(self, request: Request) -> RedirectResponse:
        """The consent page, for browser tests: the user is signed in at the provider and allows at once."""
        code, query = self.consent(str(request.url))
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return RedirectResponse(back, status_code=302)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/token", self._token, methods=["POST"]),
                                Route("/authorize", self._authorize, methods=["GET"])])
        self.url = await self._http.start(app)

    async def stop(self) -> None:
        await self._http.stop()


@contextmanager
def oauth_in_thread() -> Iterator[FakeOAuth]:
    """The fake on a loop of its own thread, for tests driven by Playwright's sync API."""
    fake = FakeOAuth()
    ready, stop = threading.Event(), threading.Event()

    async def main() -> None:
        await fake.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await fake.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="fake-oauth", daemon=True)
    thread.start()
    assert ready.wait(20), "the fake OAuth provider did not start"
    try:
        yield fake
    finally:
        stop.set()
        thread.join(timeout=20)
