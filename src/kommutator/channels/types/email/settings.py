"""What an email channel is configured with: one support address, how mail comes in, how replies go out."""

from __future__ import annotations

import re
import ssl
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kommutator.channels.oauth import OAuthCredentials, OAuthSettings
from kommutator.net.mail import check_helo_name

# One @, something on each side, no spaces or brackets; internal domains (corp.local) are fine here.
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.:-]*[A-Za-z0-9])?$")


Inbound = Literal["smtp", "imap"]


def _smtp_only() -> list[Inbound]:
    return ["smtp"]


def check_address(value: str) -> str:
    """A support mailbox address, lower-cased; ValueError with what is wrong."""
    value = value.strip().lower()
    if not _ADDRESS.match(value) or len(value) > 254:
        raise ValueError("must be a plain mailbox address such as support@shop.example (no display name)")
    return value


def _check_host(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip(".")
    if not _HOST.match(value) or len(value) > 253:
        raise ValueError("must be a host name or an IP address, e.g. imap.gmail.com or 127.0.0.1")
    return value


def tls_context(pem: str | None) -> ssl.SSLContext:
    """The TLS context for the channel's IMAP and SMTP servers: the system's trusted CAs, plus the channel's own
    CA certificate when it has one (a company's private CA), never less. Host names are always checked."""
    context = ssl.create_default_context()
    if pem:
        context.load_verify_locations(cadata=pem)
    return context


class _Mailbox(BaseModel):
    """The mailbox's own settings (listed first on the channel screen; the sign-in method follows)."""

    address: str = Field(description="The support mailbox this channel answers for, e.g. support@shop.example")
    display_name: str = Field(default="", max_length=100,
                              description="Shown as the sender of replies, e.g. 'Shop support'")
    inbound: list[Inbound] = Field(
        default_factory=_smtp_only, min_length=1, max_length=2,
        description="'smtp': mail for the address is delivered to Kommutator's own SMTP listener "
                    "(KOMMUTATOR_SMTP_LISTEN); 'imap': Kommutator polls an existing mailbox")
    imap_host: str | None = Field(default=None, description="IMAP server, e.g. imap.gmail.com (needed for 'imap')")
    imap_port: int | None = Field(default=None, ge=1, le=65535, description="Default 993 with ssl, else 143")
    imap_security: Literal["ssl", "starttls", "none"] = Field(
        default="ssl", description="'ssl' (implicit TLS), 'starttls', or 'none' (only on a trusted network)")
    imap_username: str | None = Field(default=None, max_length=254, description="Default: the address")
    imap_folder: str = Field(default="INBOX", min_length=1, max_length=200)
    poll_seconds: int = Field(default=60, ge=5, le=3600, description="How often the mailbox is checked")
    smtp_host: str = Field(description="Where replies are sent, e.g. smtp.gmail.com or 127.0.0.1 for a local relay")
    smtp_port: int | None = Field(default=None, ge=1, le=65535,
                                  description="Default 587 with starttls, 465 with ssl, 25 with none")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="'starttls', 'ssl' (implicit TLS), or 'none' (only for a local relay)")
    smtp_username: str | None = Field(
        default=None, max_length=254,
        description="Login for the SMTP server; default: the address when smtp_password is set, else no login")
    smtp_helo_name: str | None = Field(
        default=None, max_length=253,
        description="The name this server gives in EHLO to smtp_host, e.g. support.shop.example; default: the host "
                    "of the public URL (KOMMUTATOR_PUBLIC_BASE_URL). Relays that require a fully qualified name "
                    "refuse 'localhost'")

    tls_ca_certificate: str | None = Field(
        default=None, max_length=100_000,
        description="A CA certificate (PEM, '-----BEGIN CERTIFICATE-----…') to trust for this channel's IMAP and SMTP "
                    "servers besides the system's, e.g. a company's private CA")

    @field_validator("tls_ca_certificate")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip() + "\n"
        if "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("must be a CA certificate in PEM form, starting with -----BEGIN CERTIFICATE-----")
        try:
            tls_context(value)
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError(f"is not a certificate that can be trusted: {exc}") from None
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)

    @field_validator("imap_host", "smtp_host")
    @classmethod
    def _hosts(cls, value: str | None) -> str | None:
        return _check_host(value)

    @field_validator("smtp_helo_name")
    @classmethod
    def _helo(cls, value: str | None) -> str | None:
        return None if value is None else check_helo_name(value)

    @field_validator("inbound")
    @classmethod
    def _unique(cls, value: list[Inbound]) -> list[Inbound]:
        return list(dict.fromkeys(value))

    @field_validator("imap_folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if any(c in value for c in '\r\n"\\'):
            raise ValueError("must not contain quotes, backslashes or line breaks")
        return value

    @model_validator(mode="after")
    def _imap_needs_host(self) -> _Mailbox:
        if "imap" in self.inbound and not self.imap_host:
            raise ValueError("imap_host is required when inbound includes 'imap'")
        return self

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def imap_port_or_default(self) -> int:
        return self.imap_port or (993 if self.imap_security == "ssl" else 143)

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or {"starttls": 587, "ssl": 465, "none": 25}[self.smtp_security]


class EmailSettings(OAuthSettings, _Mailbox):
    model_config = ConfigDict(extra="forbid")


class _Passwords(BaseModel):
    imap_password: str | None = Field(default=None, min_length=1, max_length=1000,
                                      description="Password (or app password) of the IMAP mailbox")
    smtp_password: str | None = Field(default=None, min_length=1, max_length=1000,
                                      description="Password for the SMTP server; leave out for a relay without login")


class EmailCredentials(OAuthCredentials, _Passwords):
    model_config = ConfigDict(extra="forbid")
