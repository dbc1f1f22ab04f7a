"""A small IMAP4rev1 server on 127.0.0.1 for tests: one account, folders of messages with UIDs and flags.

It speaks what a polling client needs (RFC 3501): CAPABILITY, NOOP, LOGIN, SELECT/EXAMINE (EXISTS,
UIDVALIDITY, UIDNEXT), UID SEARCH (ALL, UID <set>, SEEN, UNSEEN), UID FETCH (BODY.PEEK[], BODY[],
RFC822, UID, FLAGS, RFC822.SIZE), UID STORE ±FLAGS, CLOSE and LOGOUT, with literals in both directions.
Sequence sets follow the RFC, including its trap: "n:*" always matches the highest UID, even below n.

Failures are programmable: a wrong password gets ``NO [AUTHENTICATIONFAILED]``; ``fail(command, answer)``
makes the next such command answer ``NO``/``BAD`` or drop the connection; ``renumber()`` gives every
message a new UID under a new UIDVALIDITY, as a server does after a mailbox rebuild. Every command line
received is recorded in ``commands``. It runs in a thread, so blocking and async clients can both use it.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CRLF = b"\r\n"
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


@dataclass
class StoredMail:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Folder:
    uidvalidity: int
    uidnext: int = 1
    mails: list[StoredMail] = field(default_factory=list)


class ImapState:
    """The account the server serves; change it from the test at any time (under ``lock``)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {"INBOX": Folder(uidvalidity=1000)}
        self.commands: list[str] = []
        self.logins = 0
        # AUTHENTICATE XOAUTH2 (Gmail, Microsoft 365): whether an access token is valid now; None: not offered.
        self.bearer: Callable[[str], bool] | None = None
        self._failures: dict[str, list[str]] = {}

    def add(self, raw: bytes, folder: str = "INBOX", flags: set[str] | None = None) -> int:
        """Deliver a mail; its UID."""
        with self.lock:
            box = self.folders.setdefault(folder, Folder(uidvalidity=1000 + len(self.folders)))
            uid = box.uidnext
            box.uidnext += 1
            box.mails.append(StoredMail(uid, raw, set(flags or ())))
            return uid

    def expunge(self, uid: int, folder: str = "INBOX") -> None:
        with self.lock:
            box = self.folders[folder]
            box.mails = [m for m in box.mails if m.uid != uid]

    def renumber(self, folder: str = "INBOX") -> None:
        """New UIDVALIDITY, every mail a new UID (and an old UID may now name another mail)."""
        with self.lock:
            box = self.folders[folder]
            box.uidvalidity += 1
            box.uidnext = 1
            for mail in box.mails:
                mail.uid = box.uidnext
                box.uidnext += 1

    def flags(self, uid: int, folder: str = "INBOX") -> set[str]:
        with self.lock:
            return next(set(m.flags) for m in self.folders[folder].mails if m.uid == uid)

    def fail(self, command: str, answer: str = "NO") -> None:
        """The next ``command`` (e.g. 'LOGIN', 'SELECT', 'UID FETCH') answers NO, BAD, or 'DROP' (connection
        closed without an answer)."""
        with self.lock:
            self._failures.setdefault(command.upper(), []).append(answer)

    def take_failure(self, command: str) -> str | None:
        with self.lock:
            queue = self._failures.get(command.upper())
            return queue.pop(0) if queue else None


class _Drop(Exception):
    pass


def _tokens(line: bytes) -> list[Any]:
    """Split an IMAP command's arguments: atoms, quoted strings, literals (already inlined) and lists."""
    out: list[object] = []
    stack: list[list[object]] = [out]
    i = 0
    while i < len(line):
        c = line[i:i + 1]
        if c == b" ":
            i += 1
        elif c == b'"':
            j, buf = i + 1, bytearray()
            while j < len(line) and line[j:j + 1] != b'"':
                if line[j:j + 1] == b"\\":
                    j += 1
                buf += line[j:j + 1]
                j += 1
            stack[-1].append(bytes(buf))
            i = j + 1
        elif c == b"(":
            inner: list[object] = []
            stack[-1].append(inner)
            stack.append(inner)
            i += 1
        elif c == b")":
            if len(stack) > 1:
                stack.pop()
            i += 1
        else:
            j = i
            depth = 0
            while j < len(line) and (line[j:j + 1] not in (b" ", b")") or depth):
                if line[j:j + 1] == b"[":
                    depth += 1
                elif line[j:j + 1] == b"]":
                    depth -= 1
                j += 1
            stack[-1].append(line[i:j])
            i = j
    return out


def _uid_set(spec: str, uids: list[int]) -> set[int]:
    """The UIDs of ``uids`` an RFC 3501 sequence set names (``*`` is the highest UID)."""
    top = max(uids) if uids else 0
    chosen: set[int] = set()
    for part in spec.split(","):
        lo_s, _, hi_s = part.partition(":")
        lo = top if lo_s == "*" else int(lo_s)
        hi = lo if not hi_s else (top if hi_s == "*" else int(hi_s))
        lo, hi = min(lo, hi), max(lo, hi)
        chosen.update(u for u in uids if lo <= u <= hi)
    return chosen


class _Handler(socketserver.StreamRequestHandler):
    server: FakeImapServer

    def setup(self) -> None:
        super().setup()
        self.state = self.server.state
        self.authenticated = False
        self.folder: str | None = None
        self.readonly = False

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def read_command(self) -> bytes | None:
        """One command line with any literals inlined as quoted-free raw bytes."""
        line = self.rfile.readline(1_000_000)
        if not line:
            return None
        line = line.rstrip(b"\r\n")
        while (m := _LITERAL.search(line)) is not None:
            size = int(m.group(1))
            if not m.group(0).endswith(b"+}"):
                self.send(b"+ go ahead" + CRLF)
            data = self.rfile.read(size)
            quoted = b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            rest = self.rfile.readline(1_000_000).rstrip(b"\r\n")
            line = line[:m.start()] + quoted + rest
        return line

    def handle(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] Fake IMAP ready" + CRLF)
        while True:
            line = self.read_command()
            if line is None:
                return
            tag, _, rest = line.partition(b" ")
            name, _, args = rest.partition(b" ")
            command = name.decode("ascii", "replace").upper()
            if command == "UID":
                sub, _, args = args.partition(b" ")
                command = "UID " + sub.decode("ascii", "replace").upper()
            with self.state.lock:
                self.state.commands.append(f"{command} {args.decode('utf-8', 'replace')}".strip()
                                           if command != "LOGIN" else "LOGIN")
            failure = self.state.take_failure(command)
            if failure == "DROP":
                return
            if failure is not None:
                self.send(tag + f" {failure} [UNAVAILABLE] {command} failed (programmed)".encode() + CRLF)
                continue
            try:
                done = self.dispatch(tag, command, args)
            except _Drop:
                return
            except (ValueError, IndexError, KeyError) as exc:
                self.send(tag + f" BAD {command}: {exc}".encode() + CRLF)
                continue
            if done:
                return

    def dispatch(self, tag: bytes, command: str, args: bytes) -> bool:
        ok = tag + b" OK " + command.encode() + b" completed" + CRLF
        if command == "CAPABILITY":
            self.send(b"* CAPABILITY IMAP4rev1 UIDPLUS AUTH=PLAIN" + CRLF + ok)
        elif command == "NOOP":
            self.send(ok)
        elif command == "LOGOUT":
            self.send(b"* BYE Fake IMAP logging out" + CRLF + ok)
            return True
        elif command == "AUTHENTICATE":
            self.authenticate(tag, args)
        elif command == "LOGIN":
            user, password = _tokens(args)
            assert isinstance(user, bytes) and isinstance(password, bytes)
            if user.decode() != self.state.username or password.decode() != self.state.password:
                self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)" + CRLF)
            else:
                self.authenticated = True
                with self.state.lock:
                    self.state.logins += 1
                self.send(tag + b" OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in" + CRLF)
        elif not self.authenticated:
            self.send(tag + b" BAD Log in first" + CRLF)
        elif command in ("SELECT", "EXAMINE"):
            (name,) = _tokens(args)
            assert isinstance(name, bytes)
            self.select(tag, name.decode(), readonly=command == "EXAMINE")
        elif command == "CLOSE":
            self.folder = None
            self.send(ok)
        elif self.folder is None:
            self.send(tag + b" BAD Select a mailbox first" + CRLF)
        elif command == "UID SEARCH":
            self.search(tag, _tokens(args))
            self.send(ok)
        elif command == "UID FETCH":
            self.fetch(_tokens(args))
            self.send(ok)
        elif command == "UID STORE":
            self.store(_tokens(args))
            self.send(ok)
        else:
            self.send(tag + f" BAD Unknown command {command}".encode() + CRLF)
        return False

    def authenticate(self, tag: bytes, args: bytes) -> None:
        """SASL XOAUTH2 as Gmail speaks it: a continuation, the client's response; on failure a challenge with
        the error as base64 JSON, an empty line from the client, then NO."""
        if args.strip().upper() != b"XOAUTH2" or self.state.bearer is None:
            self.send(tag + b" NO [CANNOT] Unsupported authentication mechanism" + CRLF)
            return
        self.send(b"+ " + CRLF)
        line = self.rfile.readline(100_000).rstrip(b"\r\n")
        try:
            fields = dict(part.split("=", 1) for part in base64.b64decode(line).decode().split("\x01") if part)
        except (ValueError, UnicodeDecodeError):
            fields = {}
        token = fields.get("auth", "").removeprefix("Bearer ")
        if fields.get("user") == self.state.username and self.state.bearer(token):
            self.authenticated = True
            with self.state.lock:
                self.state.logins += 1
            self.send(tag + b" OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in" + CRLF)
            return
        error = json.dumps({"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"})
        self.send(b"+ " + base64.b64encode(error.encode()) + CRLF)
        self.rfile.readline(100_000)
        self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)" + CRLF)

    def _box(self) -> Folder:
        assert self.folder is not None
        return self.state.folders[self.folder]

    def select(self, tag: bytes, name: str, *, readonly: bool) -> None:
        with self.state.lock:
            box = self.state.folders.get("INBOX" if name.upper() == "INBOX" else name)
            if box is None:
                self.folder = None
                self.send(tag + b" NO [NONEXISTENT] Unknown Mailbox: " + name.encode() + CRLF)
                return
            self.folder = "INBOX" if name.upper() == "INBOX" else name
            self.readonly = readonly
            unseen = [i for i, m in enumerate(box.mails, 1) if "\\Seen" not in m.flags]
            lines = [b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                     b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
                     f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid.".encode(),
                     f"* {len(box.mails)} EXISTS".encode(), b"* 0 RECENT",
                     f"* OK [UIDNEXT {box.uidnext}] Predicted next UID.".encode()]
            if unseen:
                lines.append(f"* OK [UNSEEN {unseen[0]}] First unseen.".encode())
        mode = b"[READ-ONLY]" if readonly else b"[READ-WRITE]"
        self.send(CRLF.join(lines) + CRLF + tag + b" OK " + mode + b" " + name.encode() + b" selected" + CRLF)

    def search(self, tag: bytes, tokens: list[object]) -> None:
        with self.state.lock:
            mails = list(self._box().mails)
        chosen = {m.uid for m in mails}
        words = [t.decode().upper() if isinstance(t, bytes) else t for t in tokens]
        i = 0
        while i < len(words):
            word = words[i]
            if word == "ALL":
                pass
            elif word == "UID":
                i += 1
                chosen &= _uid_set(str(words[i]), [m.uid for m in mails])
            elif word == "SEEN":
                chosen &= {m.uid for m in mails if "\\Seen" in m.flags}
            elif word == "UNSEEN":
                chosen &= {m.uid for m in mails if "\\Seen" not in m.flags}
            elif isinstance(word, str) and re.fullmatch(r"[\d:*,]+", word):
                # A bare sequence set: message numbers.
                numbers = _uid_set(word, list(range(1, len(mails) + 1)))
                chosen &= {m.uid for n, m in enumerate(mails, 1) if n in numbers}
            else:
                raise ValueError(f"unsupported search key {word}")
            i += 1
        self.send(b"* SEARCH" + b"".join(b" %d" % u for u in sorted(chosen)) + CRLF)

    def fetch(self, tokens: list[object]) -> None:
        spec, items = tokens[0], tokens[1]
        assert isinstance(spec, bytes)
        wanted = [i.decode().upper() for i in (items if isinstance(items, list) else [items])
                  if isinstance(i, bytes)]
        with self.state.lock:
            mails = list(enumerate(self._box().mails, 1))
            uids = _uid_set(spec.decode(), [m.uid for _, m in mails])
            for number, mail in mails:
                if mail.uid not in uids:
                    continue
                parts = [b"UID %d" % mail.uid]
                body: bytes | None = None
                for item in wanted:
                    if item in ("BODY[]", "RFC822"):
                        if not self.readonly:
                            mail.flags.add("\\Seen")
                        body = mail.raw
                        parts.append(item.encode() + b" {%d}" % len(mail.raw))
                    elif item == "BODY.PEEK[]":
                        body = mail.raw
                        parts.append(b"BODY[] {%d}" % len(mail.raw))
                    elif item == "RFC822.SIZE":
                        parts.append(b"RFC822.SIZE %d" % len(mail.raw))
                    elif item == "FLAGS":
                        parts.append(b"FLAGS (" + " ".join(sorted(mail.flags)).encode() + b")")
                    elif item != "UID":
                        raise ValueError(f"unsupported fetch item {item}")
                head = b"* %d FETCH (" % number
                if body is None:
                    self.send(head + b" ".join(parts) + b")" + CRLF)
                else:
                    # The literal must close the line it is announced on: put it last.
                    literal = next(p for p in parts if p.endswith(b"}"))
                    others = [p for p in parts if p is not literal]
                    self.send(head + b" ".join([*others, literal]) + CRLF + body + b")" + CRLF)

    def store(self, tokens: list[object]) -> None:
        spec, action, flags = tokens[0], tokens[1], tokens[2]
        assert isinstance(spec, bytes) and isinstance(action, bytes)
        names = {f.decode() for f in (flags if isinstance(flags, list) else [flags]) if isinstance(f, bytes)}
        op = action.decode().upper()
        with self.state.lock:
            for number, mail in enumerate(self._box().mails, 1):
                if mail.uid not in _uid_set(spec.decode(), [m.uid for m in self._box().mails]):
                    continue
                if op.startswith("+FLAGS"):
                    mail.flags |= names
                elif op.startswith("-FLAGS"):
                    mail.flags -= names
                elif op.startswith("FLAGS"):
                    mail.flags = set(names)
                else:
                    raise ValueError(f"unsupported store {op}")
                if not op.endswith(".SILENT"):
                    self.send(b"* %d FETCH (UID %d FLAGS (" % (number, mail.uid)
                              + " ".join(sorted(mail.flags)).encode() + b"))" + CRLF)


class FakeImapServer(socketserver.ThreadingTCPServer):
    """``with FakeImapServer(state) as server: server.port`` — listening on 127.0.0.1 in a thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: ImapState, *, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.tls = tls  # implicit TLS (port 993 style) with this server context
        self.port = int(self.server_address[1])
        self._thread: threading.Thread | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        return (self.tls.wrap_socket(sock, server_side=True) if self.tls is not None else sock), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refused our certificate hangs up mid-handshake: expected in the TLS tests

    def __enter__(self) -> FakeImapServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
