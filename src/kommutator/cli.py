"""The `kommutator` command: serve, demo, migrate, user create, reports rebuild, assist evaluate."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from typing import Any

import click

from kommutator.config import ENV_PREFIX, ConfigError, Settings, load_settings


def demo_allow_entry(settings: Settings) -> str:
    """The allow-list entry for the demo's own server: its listen address and port, no other port."""
    host = settings.listen_host
    return f"[{host}]:{settings.listen_port}" if ":" in host else f"{host}:{settings.listen_port}"


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def cluster_problem(settings: Settings) -> str | None:
    """Why several server processes cannot run on these settings (None: they can). They share one PostgreSQL
    database and one Redis (docs/deployment.md)."""
    if not settings.database_url.startswith("postgresql"):
        return ("--workers above 1 needs PostgreSQL: set KOMMUTATOR_DATABASE_URL=postgresql+asyncpg://user@host/db "
                "(the embedded SQLite database takes one server process)")
    if not settings.redis_url:
        return ("--workers above 1 needs Redis, which carries events, presence and limits between the processes: "
                "set KOMMUTATOR_REDIS_URL=redis://127.0.0.1:6379/0")
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"--workers above 1 needs Redis, and {settings.redis_url.split('@')[-1]} does not answer: {exc}"
    finally:
        client.close()
    return None


def _serve(settings: Settings, *, demo: bool = False, workers: int = 1) -> None:
    import uvicorn

    from kommutator.app import create_app
    from kommutator.migrate import upgrade

    asyncio.run(upgrade(settings.database_url))
    if workers == 1:
        uvicorn.run(create_app(settings, demo=demo), host=settings.listen_host, port=settings.listen_port,
                    log_level="info", proxy_headers=False)
        return
    # Each process builds the app from the environment: hand it what the command line and this process settled
    # (the options, and the secret key a first start wrote to the data folder), so all of them agree.
    for name, value in (("LISTEN_HOST", settings.listen_host), ("LISTEN_PORT", str(settings.listen_port)),
                        ("DATA_DIR", str(settings.data_dir)), ("SECRET_KEY", settings.secret_key)):
        os.environ[ENV_PREFIX + name] = value
    uvicorn.run("kommutator.app:create_app", factory=True, workers=workers, host=settings.listen_host,
                port=settings.listen_port, log_level="info", proxy_headers=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kommutator")
def main() -> None:
    """Kommutator: an omnichannel contact centre.

    Settings come from KOMMUTATOR_* environment variables and ./kommutator.toml
    (see docs/configuration.md).
    """


@main.command()
@click.option("--host", help="Listen address (default 127.0.0.1, env KOMMUTATOR_LISTEN_HOST).")
@click.option("--port", type=int, help="Listen port (default 8000, env KOMMUTATOR_LISTEN_PORT).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder (env KOMMUTATOR_DATA_DIR).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes on the one port; above 1 needs PostgreSQL and Redis (docs/deployment.md).")
def serve(host: str | None, port: int | None, data_dir: str | None, workers: int) -> None:
    """Apply pending migrations and run the server (one process, or --workers N on one port)."""
    settings = _settings(listen_host=host, listen_port=port, data_dir=data_dir)
    if workers > 1 and (problem := cluster_problem(settings)):
        raise click.ClickException(problem)
    _serve(settings, workers=workers)


@main.command()
@click.option("--host", help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default 8000).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder (default ./kommutator-data).")
@click.option("--no-serve", is_flag=True, help="Only seed the demo workspace, do not start the server.")
def demo(host: str | None, port: int | None, data_dir: str | None, no_serve: bool) -> None:
    """Seed a demo workspace (once) on the embedded database and run the server."""
    from kommutator.demo.seed import DEMO_USERS, seed
    from kommutator.migrate import upgrade

    settings = _settings(listen_host=host, listen_port=port, data_dir=data_dir)
    # The demo channel delivers agent replies to the stand-in CRM on this very server: allow its port only.
    settings.outbound_allow_hosts = [*settings.outbound_allow_hosts, demo_allow_entry(settings)]
    asyncio.run(upgrade(settings.database_url))
    here = f"http://{settings.listen_host}:{settings.listen_port}"
    created = asyncio.run(seed(settings, outbound_url=f"{here}/demo/integrator", history=True,
                               crm_url=f"{here}/demo/crm/customers", events_url=f"{here}/demo/events"))
    url = f"http://{settings.listen_host}:{settings.listen_port}/"
    click.echo("")
    click.echo("Kommutator demo " + ("seeded" if created else "workspace already seeded; reusing it"))
    click.echo(f"  Open {url} in a browser.  API docs: {url}api/v1/docs")
    click.echo(f"  Demo shop with the website chat: {url}demo/shop  (Russian: {url}demo/shop?lang=ru)")
    click.echo(f"  Data folder: {settings.data_dir.resolve()}")
    click.echo("  Logins:")
    for email, password, role, _name in DEMO_USERS:
        click.echo(f"    {role:<11} {email:<28} password: {password}")
    click.echo("")
    if created:
        click.echo(f"  Agent replies on the demo channel go to {settings.data_dir.resolve()}/demo-integrator.jsonl")
        click.echo(f"  Events for the demo CRM (Event subscriptions) go to "
                   f"{settings.data_dir.resolve()}/demo-events.jsonl")
        click.echo("")
    if not no_serve:
        _serve(settings, demo=True)


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from kommutator.migrate import upgrade

    settings = _settings()
    asyncio.run(upgrade(settings.database_url))
    click.echo(f"Database is up to date: {settings.database_url.split('@')[-1]}")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.option("--email", required=True, help="Login email.")
@click.option("--name", required=True, help="Display name.")
@click.option("--role", type=click.Choice(["admin", "supervisor", "agent"]), default="agent", show_default=True)
@click.option("--password", help="Password (asked for when omitted; at least 8 characters).")
@click.option("--locale", type=click.Choice(["en", "ru"]), default="en", show_default=True)
def user_create(email: str, name: str, role: str, password: str | None, locale: str) -> None:
    """Create a user (e.g. the first administrator)."""
    from pydantic import ValidationError

    from kommutator.agents.schemas import UserCreate

    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat: ") != password:
                raise click.ClickException("The passwords differ.")
    try:
        data = UserCreate(email=email, name=name, role=role, password=password, locale=locale)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise click.ClickException(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    settings = _settings()
    user_id = asyncio.run(_create_user(settings, data))
    click.echo(f"Created {role} {str(data.email).lower()} (id {user_id}).")


async def _create_user(settings: Settings, data: Any) -> int:
    from kommutator.agents.actions import do_create_user
    from kommutator.auth.passwords import hash_password
    from kommutator.db import Tx
    from kommutator.errors import ProblemError
    from kommutator.migrate import upgrade
    from kommutator.runtime import Runtime

    await upgrade(settings.database_url)
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        password_hash = hash_password(data.password)

        async def job(tx: Tx) -> int:
            return (await do_create_user(tx, None, data, password_hash=password_hash)).id

        return await rt.db.write(job)
    except ProblemError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        await rt.db.close()


@main.group()
def assist() -> None:
    """Agent assist: reply suggestions."""


@assist.command("evaluate")
@click.option("--threshold", type=click.FloatRange(0, 100), default=90.0, show_default=True,
              help="A suggestion matches the sent reply when their normalised texts' similarity ratio reaches this.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def assist_evaluate(threshold: float, as_json: bool) -> None:
    """Replay history: how often was the reply agents sent among the top 1 / top 3 suggestions?"""
    import json

    report = asyncio.run(_evaluate(_settings(), threshold))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(f"Agent replies to customer text replayed: {report['replies']} "
               f"(with suggestions: {report['with_suggestions']})")
    click.echo(f"  sent reply was suggestion #1:   {report['top1']:>6}  {report['top1_rate']:.1%}")
    click.echo(f"  sent reply among the top 3:     {report['top3']:>6}  {report['top3_rate']:.1%}")
    sources = ", ".join(f"{k} {v}" for k, v in sorted(report["by_source"].items())) or "none"
    click.echo(f"  found by source (top 3): {sources}")
    click.echo(f"  match: normalised text similarity ratio >= {report['threshold']:g} of 100 (rapidfuzz)")
    click.echo(f"  suggestion time: p50 {report['suggest_ms_p50']} ms, p95 {report['suggest_ms_p95']} ms; "
               f"past replies indexed at the end: {report['pairs_indexed']}")


async def _evaluate(settings: Settings, threshold: float) -> dict[str, Any]:
    from kommutator.assist.evaluate import replay
    from kommutator.runtime import Runtime

    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        async with rt.db.read() as s:
            return (await replay(s, threshold=threshold)).as_dict()
    finally:
        await rt.db.close()


@main.group()
def reports() -> None:
    """Report facts and rollups."""


@reports.command("rebuild")
def reports_rebuild() -> None:
    """Recompute every report fact and hourly rollup from the conversations' history (idempotent)."""
    settings = _settings()
    count = asyncio.run(_rebuild_reports(settings))
    click.echo(f"Rebuilt the report facts of {count} conversations and their hourly rollups.")


async def _rebuild_reports(settings: Settings) -> int:
    from kommutator.app import register_all
    from kommutator.migrate import upgrade
    from kommutator.reports.actions import rebuild
    from kommutator.runtime import Runtime

    await upgrade(settings.database_url)
    register_all()
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        return await rebuild(rt.db)
    finally:
        await rt.db.close()


if __name__ == "__main__":
    main()
