"""Turn off the demo workspace's event subscriptions and CRM integration, through the API.

The demo seeds an event subscription (to its own event log) and the CRM card integration; both do work for
messages (signed deliveries, CRM look-ups) that has nothing to do with the inbound path a benchmark measures.
``python bench/demo_quiet.py --url http://127.0.0.1:8101`` logs in as the demo's administrator and disables
them; ``bench/run.py`` and ``bench/per_message.py`` call :func:`quiet` unless given ``--with-integrations``.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from typing import Any

ADMIN = ("admin@demo.kommutator.dev", "demo-admin-2026")  # kommutator.demo.seed.DEMO_USERS[0]


class _Api:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.csrf:
            req.add_header("X-CSRF-Token", self.csrf)
        with self.opener.open(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def quiet(base_url: str) -> dict[str, int]:
    """Disable every enabled event subscription and the CRM integration; return what was turned off."""
    api = _Api(base_url)
    me = api.call("POST", "/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})
    api.csrf = me["csrf_token"]
    done = {"subscriptions": 0, "crm": 0}
    for sub in api.call("GET", "/subscriptions"):
        if sub.get("enabled"):
            api.call("PATCH", f"/subscriptions/{sub['id']}", {"enabled": False})
            done["subscriptions"] += 1
    try:
        crm = api.call("GET", "/integrations/crm")
    except urllib.error.HTTPError as exc:  # no CRM configured
        if exc.code != 404:
            raise
        crm = None
    if crm and crm.get("enabled"):
        api.call("PUT", "/integrations/crm", {"enabled": False})
        done["crm"] = 1
    return done


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8101")
    print(quiet(parser.parse_args().url))
