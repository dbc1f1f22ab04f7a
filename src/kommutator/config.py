"""Settings from environment variables and an optional kommutator.toml, validated at start."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from kommutator.net.addresses import parse_allow_entry
from kommutator.net.mail import check_helo_name

ENV_PREFIX = "KOMMUTATOR_"


class ConfigError(Exception):
    """Raised when the configuration cannot be used; the message says what to fix."""


class _TomlSource(PydanticBaseSettingsSource):
    """Read settings from the TOML file named by KOMMUTATOR_CONFIG (default ./kommutator.toml)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot read the configuration file: {exc}") from exc
        section = data.get("kommutator", data)
        if not isinstance(section, dict):
            raise ConfigError(f"{self.path}: the [kommutator] section must be a table")
        return section


class Settings(BaseSettings):
    """Everything the server needs to start; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    data_dir: Path = Field(default=Path("./kommutator-data"), description="Folder for the database, keys, files")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in data_dir")
    redis_url: str = Field(default="", description="Redis URL shared by several server processes (docs/deployment.md); "
                                                 "empty: one process on its own")
    redis_prefix: str = Field(default="kommutator:", max_length=100,
                              description="Prefix of this installation's Redis keys and channel")
    secret_key: str = Field(default="", description="Key for sessions and encryption at rest")
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="URL users and providers reach")
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_upload_bytes: int = Field(default=20_000_000, ge=1024, description="Largest attachment accepted")
    login_attempts_per_minute: int = Field(default=10, ge=1)
    session_hours: int = Field(default=12, ge=1)
    cookie_secure: bool | None = Field(
        default=None, description="Mark the session cookie Secure; empty: when public_base_url is https")
    hsts_max_age: int = Field(default=31_536_000, ge=0,
                              description="Strict-Transport-Security max-age when public_base_url is https; 0: off")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is believed; "
                    "comma-separated in the environment")
    db_echo: bool = False
    timezone: str = Field(default="UTC", description="The workspace's time zone (an IANA name): reports' periods")
    smtp_listen: str = Field(default="", pattern=r"^$|^[^\s:]+:[0-9]{1,5}$",
                             description="host:port of the built-in SMTP listener for email channels; empty: off")
    smtp_max_message_bytes: int = Field(default=30_000_000, ge=10_000, description="Largest mail the listener takes")
    # Alerts by email go through this SMTP relay (quality/delivery.py); empty host: no alert emails.
    alert_smtp_host: str = Field(default="", description="SMTP relay for alert emails; empty: alert emails off")
    alert_smtp_port: int = Field(default=25, ge=1, le=65535)
    alert_smtp_security: str = Field(default="none", pattern=r"^(none|starttls|ssl)$")
    alert_smtp_username: str = ""
    alert_smtp_password: str = ""
    alert_email_from: str = Field(default="kommutator@localhost", description="From address of alert emails")
    alert_smtp_helo_name: str = Field(
        default="", description="The name given in EHLO to the alert relay, e.g. alerts.shop.example; empty: the host "
                                "of public_base_url")
    telegram_api_base_url: str = Field(default="https://api.telegram.org",
                                       description="Telegram Bot API for alerts to a supervisor's chat")
    bot_shipped_intents: bool = Field(
        default=True, description="Train the bot's intent models on the shipped intents (new_order, order_status, "
                                  "…) besides the business's own; false: on the business's intents alone")
    outbound_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts, addresses or networks (CIDR) outbound connections may reach although they are private "
                    "or loopback, each optionally with the one port it allows (127.0.0.1:8000, [::1]:8000, "
                    "crm.internal:443); comma-separated in the environment")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get(ENV_PREFIX + "CONFIG", "kommutator.toml")
        return (init_settings, env_settings, _TomlSource(settings_cls, Path(path)))

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(e.g. postgresql+asyncpg://user@127.0.0.1:5432/kommutator)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as Europe/Moscow or UTC") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("redis", "rediss"):
            raise ValueError("must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0")
        return value

    @field_validator("alert_smtp_helo_name")
    @classmethod
    def _check_helo_name(cls, value: str) -> str:
        return check_helo_name(value) if value.strip() else ""

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://support.example.com")
        return value.rstrip("/")

    @field_validator("outbound_allow_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network such as 10.0.0.5 or 10.0.0.0/24") from None
        return networks

    @field_validator("outbound_allow_hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_allow_entry(entry)  # ValueError says which entry is malformed and how to write it
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters; leave it empty to generate one in data_dir")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'kommutator.db').resolve()}"
        if "public_base_url" not in self.model_fields_set:
            # Not given: the address this server listens on (a wildcard listen address is reached via loopback),
            # so links, the widget snippet and webhook URLs name the port it really serves.
            host = self.listen_host if self.listen_host not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104  (compared, not bound)
            self.public_base_url = f"http://{f'[{host}]' if ':' in host else host}:{self.listen_port}"
        return self

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: as set, or when users reach the server by an https URL."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.public_base_url.startswith("https://")

    @property
    def hsts(self) -> str:
        """The Strict-Transport-Security header value, or "" when the public URL is not https."""
        if not self.public_base_url.startswith("https://") or not self.hsts_max_age:
            return ""
        return f"max-age={self.hsts_max_age}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_data_dir(self) -> None:
        """Create the data folder and the secret key file on first start, then keep them."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"data_dir {self.data_dir}: cannot create the folder: {exc}") from exc
        if self.secret_key:
            return
        key_file = self.data_dir / "secret.key"
        if key_file.exists():
            self.secret_key = key_file.read_text(encoding="ascii").strip()
            if len(self.secret_key) < 32:
                raise ConfigError(f"{key_file} holds a key shorter than 32 characters; delete it to regenerate")
            return
        key = secrets.token_urlsafe(48)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
        self.secret_key = key


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings; raise ConfigError with one line per problem."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            env = ENV_PREFIX + name.upper()
            lines.append(f"  {name} (env {env}): {err['msg']}")
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from exc
    settings.ensure_data_dir()
    return settings
