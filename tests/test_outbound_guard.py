"""The one outbound guard: special addresses in every form and spelling, pinning against DNS rebinding,
SMTP and IMAP through it, channel targets refused at save, and allow-list entries with ports."""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kommutator.channels.base import ChannelConfig, OutboundMessage, SendError
from kommutator.channels.types.email import imap
from kommutator.channels.types.email.sending import send_blocking
from kommutator.channels.types.email.settings import EmailSettings
from kommutator.cli import demo_allow_entry
from kommutator.clock import now
from kommutator.config import ConfigError, load_settings
from kommutator.net.addresses import literal_address, parse_allow_entry, parse_ipv4, special_reason
from kommutator.net.guard import OutboundGuard, OutboundRefused
from kommutator.net.http import GuardedTransport
from kommutator.net.mail import GuardedSMTP

# Written out again here (not imported): every range the guard must refuse, whatever Python's is_global says.
SPECIAL_V4 = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
              "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
              "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"]
SPECIAL_V6 = ["::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8", "2001:db8::/32", "64:ff9b:1::/48",
              "2001::/32", "::/96", "100::/64", "fec0::/10"]
PUBLIC_V4 = ["8.0.0.0/8", "93.184.0.0/16", "1.1.1.0/24", "185.0.0.0/8", "203.0.114.0/24"]


def in_network(cidr: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    net = ipaddress.ip_network(cidr)
    return st.integers(0, net.num_addresses - 1).map(lambda i: net[i])


special_v4 = st.sampled_from(SPECIAL_V4).flatmap(in_network)
public_v4 = st.sampled_from(PUBLIC_V4).flatmap(in_network)


@given(special_v4)
def test_every_special_ipv4_range_is_refused(address):
    assert special_reason(address) is not None, f"{address} must be refused"


@given(st.sampled_from(SPECIAL_V6).flatmap(in_network))
def test_every_special_ipv6_range_is_refused(address):
    assert special_reason(address) is not None, f"{address} must be refused"


@given(public_v4)
def test_public_ipv4_is_let_through(address):
    assert special_reason(address) is None


def embeddings(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    n = int(v4)
    return {"mapped": ipaddress.IPv6Address((0xFFFF << 32) | n),
            "nat64": ipaddress.IPv6Address((0x64FF9B << 96) | n),
            "6to4": ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)}


@given(special_v4)
def test_an_ipv6_form_carrying_a_special_ipv4_is_refused(v4):
    for how, address in embeddings(v4).items():
        reason = special_reason(address)
        assert reason is not None and str(v4) in reason, f"{how} form {address} of {v4}: {reason}"


@given(public_v4)
def test_an_ipv6_form_carrying_a_public_ipv4_is_public_but_local_nat64_teredo_and_compatible_are_not(v4):
    for address in embeddings(v4).values():
        assert special_reason(address) is None, address
    n = int(v4)
    assert special_reason(ipaddress.IPv6Address((0x64FF9B0001 << 80) | n)) is not None  # local-use NAT64
    assert special_reason(ipaddress.IPv6Address(n)) is not None  # IPv4-compatible ::a.b.c.d
    client = 0xFFFFFFFF ^ int(ipaddress.ip_address("10.0.0.1"))  # Teredo stores the client's address inverted
    teredo = ipaddress.IPv6Address((0x20010000 << 96) | (n << 64) | client)
    assert "10.0.0.1" in (special_reason(teredo) or ""), "Teredo naming a private client"


def spell_part(value: int, radix: str) -> str:
    return {"dec": str(value), "oct": "0" + format(value, "o"), "hex": "0x" + format(value, "x"),
            "HEX": "0X" + format(value, "X")}[radix]


@st.composite
def ipv4_spellings(draw: st.DrawFn) -> tuple[ipaddress.IPv4Address, str]:
    """An address and one of the spellings inet_aton accepts: 1 to 4 parts, each in any radix."""
    address = draw(st.one_of(special_v4, public_v4))
    raw = address.packed
    parts = draw(st.integers(1, 4))
    values = [*raw[: parts - 1], int.from_bytes(raw[parts - 1:], "big")]
    radices = draw(st.lists(st.sampled_from(["dec", "oct", "hex", "HEX"]), min_size=parts, max_size=parts))
    return address, ".".join(spell_part(v, r) for v, r in zip(values, radices, strict=True))


@given(ipv4_spellings())
@settings(max_examples=300)
def test_every_ipv4_spelling_the_resolver_accepts_is_read_as_the_same_address(case):
    address, spelling = case
    assert parse_ipv4(spelling) == address
    assert literal_address(spelling) == address
    assert socket.inet_aton(spelling) == address.packed, "the C library reads it the same way"
    numeric = socket.getaddrinfo(spelling, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    assert {info[4][0] for info in numeric} == {str(address)}, "and so does the resolver"


@given(st.text(alphabet="0123456789.xXabcdefg", min_size=1, max_size=20).filter(lambda s: not s.endswith(".")))
@settings(max_examples=300)
def test_a_text_is_an_ipv4_address_exactly_when_inet_aton_says_so(text):
    try:
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert parse_ipv4(text) == expected


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "017700000001", "2130706433", "0x7f000001", "0", "0.0.0.0",
                                  "169.254.169.254", "[::ffff:127.0.0.1]", "[64:ff9b::a00:1]", "[2002:7f00:1::1]",
                                  "[::127.0.0.1]", "[fe80::1%eth0]", "100.64.0.1", "198.18.0.1", "224.0.0.1"])
def test_literal_special_hosts_are_refused_without_any_lookup(host):
    def no_lookups(name: str, port: int) -> list[str]:
        raise AssertionError(f"{name} is an address: nothing to look up")

    with pytest.raises(OutboundRefused) as refused:
        OutboundGuard(resolver=no_lookups).resolve_blocking(host, 80)
    assert "outbound_allow_hosts" in refused.value.reason and not refused.value.retryable


# --- Allow-list entries with ports -----------------------------------------------------------------------

def test_allow_entries_may_name_a_port_and_then_allow_only_that_port():
    guard = OutboundGuard(["127.0.0.1:8000", "[::1]:8000", "crm.internal:443", "10.0.0.0/8", "192.168.5.5"])
    loop4, loop6 = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")
    assert guard.refusal("127.0.0.1", 8000, loop4) is None
    assert guard.refusal("127.0.0.1", 8001, loop4) is not None, "another loopback port stays closed"
    assert guard.refusal("::1", 8000, loop6) is None and guard.refusal("::1", 22, loop6) is not None
    assert guard.refusal("::ffff:127.0.0.1", 8000, ipaddress.ip_address("::ffff:127.0.0.1")) is None
    internal = ipaddress.ip_address("10.9.9.9")
    assert guard.refusal("crm.internal", 443, internal) is None
    assert guard.refusal("crm.internal", 80, internal) is None, "10.0.0.0/8 allows every port"
    assert guard.refusal("crm.internal", 80, ipaddress.ip_address("172.16.0.1")) is not None
    assert guard.refusal("x", 25, ipaddress.ip_address("192.168.5.5")) is None
    idn = OutboundGuard(["почта.рф:443"])
    assert idn.refusal("xn--80a1acny.xn--p1ai", 443, internal) is None, "an IDN entry covers the name URLs resolve"


@pytest.mark.parametrize("entry", ["127.0.0.1:0", "127.0.0.1:99999", "host:port", "[::1]8000", "10.0.0.0/33",
                                   "a b", ":80"])
def test_a_malformed_allow_entry_is_a_configuration_error(entry, tmp_path):
    with pytest.raises(ValueError):
        parse_allow_entry(entry)
    with pytest.raises(ConfigError):
        load_settings(data_dir=tmp_path, outbound_allow_hosts=[entry])


def test_the_demo_allows_its_own_port_and_no_other(tmp_path):
    demo = load_settings(data_dir=tmp_path, listen_host="127.0.0.1", listen_port=8123)
    guard = OutboundGuard([demo_allow_entry(demo)])
    assert guard.resolve_blocking("127.0.0.1", 8123) == [ipaddress.ip_address("127.0.0.1")]
    for port in (8000, 5432, 6379):
        with pytest.raises(OutboundRefused, match=re.escape(f"127.0.0.1:{port}")):
            guard.resolve_blocking("127.0.0.1", port)
    assert demo_allow_entry(load_settings(data_dir=tmp_path, listen_host="::1", listen_port=9)) == "[::1]:9"


# --- DNS rebinding: the connection goes to the address that was checked -----------------------------------

class Answers:
    """A resolver that gives each answer in turn (the last one from then on), counting the questions."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers, self.asked = list(answers), 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


async def test_http_rebinding_cannot_reach_the_private_answer():
    reached: list[str] = []
    rebinding = Answers(["93.184.216.34"], ["127.0.0.1"])

    def handler(request: httpx.Request) -> httpx.Response:
        reached.append(request.url.host)
        return httpx.Response(200)

    transport = GuardedTransport(guard=OutboundGuard(resolver=rebinding), inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as c:
        assert (await c.get("http://rebind.example/")).status_code == 200
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
            await c.get("http://rebind.example/")
    assert reached == ["93.184.216.34"] and rebinding.asked == 2, "one lookup per request, sent to its answer"


class Greeter:
    """A loopback TCP server that greets like an SMTP server and records who connected."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.sendall(b"220 fake ESMTP\r\n")
                conn.recv(1024)
                conn.sendall(b"221 bye\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def greeter() -> Iterator[Greeter]:
    server = Greeter()
    yield server
    server.close()


def test_smtp_rebinding_connects_to_the_checked_address_only(greeter):
    rebinding = Answers(["127.0.0.1"], ["10.0.0.1"])
    guard = OutboundGuard([f"127.0.0.1:{greeter.port}"], resolver=rebinding)
    client = GuardedSMTP(guard, "mail.example", greeter.port, timeout=5)
    assert client.sock.getpeername()[0] == "127.0.0.1"
    client.quit()
    with pytest.raises(OutboundRefused, match=r"mail\.example resolves to 10\.0\.0\.1"):
        GuardedSMTP(guard, "mail.example", greeter.port, timeout=5)
    assert rebinding.asked == 2 and greeter.accepted == 1


def test_a_name_with_a_public_and_a_private_answer_is_refused_before_connecting(greeter):
    guard = OutboundGuard(resolver=Answers(["93.184.216.34", "127.0.0.1"]))
    with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
        guard.connect_blocking("mixed.example", greeter.port, 5)
    assert greeter.accepted == 0


# --- SMTP and IMAP of email channels -------------------------------------------------------------------

def email_channel(port: int, **extra: object) -> ChannelConfig:
    settings = {"address": "support@shop.example", "smtp_host": "127.0.0.1", "smtp_port": port,
                "smtp_security": "none", **extra}
    return ChannelConfig(id=1, type="email", name="mail", enabled=True, settings=settings, credentials={})


def test_an_email_reply_to_a_loopback_smtp_server_is_refused_unless_allowed(greeter):
    message = OutboundMessage(id=1, idempotency_key="k1", conversation_id=1, to="c@example.org", text="hi",
                              kind="text", created_at=now(), subject="s")
    with pytest.raises(SendError) as refused:
        send_blocking(email_channel(greeter.port), message)
    assert not refused.value.retryable
    assert refused.value.reason.startswith("smtp_host: 127.0.0.1 is a loopback address")
    assert f"outbound_allow_hosts setting lists the host or address (e.g. 127.0.0.1:{greeter.port})" \
        in refused.value.reason
    assert greeter.accepted == 0


def test_an_imap_mailbox_on_loopback_is_refused_unless_allowed(greeter):
    settings = EmailSettings.model_validate({**email_channel(greeter.port).settings, "inbound": ["imap"],
                                             "imap_host": "127.0.0.1", "imap_port": greeter.port,
                                             "imap_security": "none"})
    with pytest.raises(imap.ImapPollError, match=r"imap_host: 127\.0\.0\.1 is a loopback address"):
        imap._open(settings, {"imap_password": "secret"}, OutboundGuard())
    assert greeter.accepted == 0


# --- Saving channels --------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:8080/",
                                 "http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://[::1]/",
                                 "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a00:1]/", "http://localhost:9/",
                                 "http://100.64.0.1/", "http://198.18.0.1/", "http://[fd00::1]/"])
async def test_an_api_channel_whose_outbound_url_is_special_is_refused_at_save(client, admin, runtime, url):
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "api", "name": "CRM", "settings": {"outbound_url": url}})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "outbound_target_refused"
    assert problem["detail"].startswith("settings.outbound_url: ") and "outbound_allow_hosts" in problem["detail"]
    assert problem["errors"][0]["field"] == "settings.outbound_url"
    listed = (await client.get("/api/v1/channels", headers=admin.headers)).json()
    assert listed == [], "nothing saved"


async def test_updating_a_channel_to_a_special_target_is_refused_and_the_old_one_kept(client, admin, api_channel):
    url = f"/api/v1/channels/{api_channel['id']}"
    r = await client.patch(url, headers=admin.headers, json={"settings": {"outbound_url": "http://10.0.0.5/hook"}})
    assert r.status_code == 422 and r.json()["code"] == "outbound_target_refused", r.text
    assert "10.0.0.5 is a private address" in r.json()["detail"]
    r = await client.patch(url, headers=admin.headers, json={"settings": {"outbound_url": "https://93.184.216.34/"}})
    assert r.status_code == 200, r.text


async def test_an_allowed_host_and_port_can_be_saved_and_another_port_cannot(client, admin, runtime):
    runtime.settings.outbound_allow_hosts = ["127.0.0.1:8000"]
    ok = await client.post("/api/v1/channels", headers=admin.headers,
                           json={"type": "api", "name": "CRM", "settings": {"outbound_url": "http://127.0.0.1:8000/"}})
    assert ok.status_code == 201, ok.text
    other = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "api", "name": "CRM2", "settings": {"outbound_url": "http://127.0.0.1:8001/"}})
    assert other.status_code == 422 and "127.0.0.1:8001" in other.json()["detail"], other.text


@pytest.mark.parametrize(("field", "extra"), [
    ("smtp_host", {"smtp_host": "127.0.0.1"}),
    ("smtp_host", {"smtp_host": "10.1.2.3"}),
    ("imap_host", {"inbound": ["imap"], "imap_host": "192.168.1.10"}),
    ("imap_host", {"inbound": ["imap"], "imap_host": "localhost"}),
])
async def test_an_email_channel_with_a_private_mail_server_is_refused_at_save(client, admin, field, extra):
    settings = {"address": "support@shop.example", "smtp_host": "smtp.gmail.com", **extra}
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "email", "name": "Mail", "settings": settings})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == f"settings.{field}"

