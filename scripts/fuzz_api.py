"""Run schemathesis with every check over every operation against a fresh server on SQLite.

    python scripts/fuzz_api.py [extra `st run` options, e.g. -n 50]

Seeds an administrator with an API token (and a channel), serves the app on a loopback port, and runs
`st run --checks all` authenticated with that token; the hooks in fuzz_hooks.py keep the run from revoking its
own token or deactivating its own user. Exits with schemathesis's status. See docs/api.md ("Fuzzing").
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORD = secrets.token_urlsafe(16)  # nobody logs in: the run uses the API token
sys.path.insert(0, str(HERE.parent / "tests"))


async def _seed(settings) -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    from kommutator.agents.actions import do_create_user
    from kommutator.agents.schemas import UserCreate
    from kommutator.auth.actions import do_create_api_token
    from kommutator.auth.passwords import hash_password
    from kommutator.auth.principal import Principal
    from kommutator.channels.actions import do_create_channel
    from kommutator.channels.schemas import ChannelCreate
    from kommutator.db import Tx
    from kommutator.migrate import upgrade
    from kommutator.runtime import Runtime

    await upgrade(settings.database_url)
    password_hash = hash_password(PASSWORD)
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        async def job(tx: Tx) -> tuple[str, int, int]:
            # Ten users and tokens take ids 1-10 first: the coverage phase tries the smallest ids of every path
            # (and the largest), and the fuzzer's own token and user must not be among the ids it revokes or
            # deactivates (fuzz_hooks.py keeps the other phases off them).
            for n in range(10):
                other = await do_create_user(tx, None, UserCreate(email=f"other{n}@example.com", name=f"Other {n}",
                                                                  password=PASSWORD, role="agent"),
                                             password_hash=password_hash)
                await do_create_api_token(tx, Principal(user_id=other.id, name=other.name, role="agent",
                                                        team_ids=frozenset()), "other")
            user = await do_create_user(tx, None, UserCreate(email="fuzz@example.com", name="Fuzz",
                                                             password=PASSWORD, role="admin"),
                                        password_hash=password_hash)
            p = Principal(user_id=user.id, name="Fuzz", role="admin", team_ids=frozenset())
            token, secret = await do_create_api_token(tx, p, "fuzz")
            await do_create_channel(tx, p, ChannelCreate(type="api", name="fuzz"), rt.box)
            return secret, token.id, user.id

        return await rt.db.write(job)
    finally:
        await rt.db.close()


def main() -> int:
    from kommutator.config import load_settings
    from live_server import bound_socket, run_server  # type: ignore[import-not-found]

    tmp = Path(tempfile.mkdtemp(prefix="kommutator-fuzz-"))
    sock, port = bound_socket()
    settings = load_settings(data_dir=tmp / "data", listen_port=port, secret_key="fuzz-secret-" + "k" * 32)
    secret, token_id, user_id = asyncio.run(_seed(settings))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "FUZZ_TOKEN_ID": str(token_id),
           "FUZZ_USER_ID": str(user_id), "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    with run_server(settings, sock) as base:
        command = ["st", "run", f"{base}/api/v1/openapi.json", "--checks", "all",
                   "-H", f"Authorization: Bearer {secret}", *sys.argv[1:]]
        print("$", " ".join(c if "Bearer" not in c else "Authorization: Bearer <token>" for c in command), flush=True)
        return subprocess.call(command, env=env)  # noqa: S603 - our own command line


if __name__ == "__main__":
    sys.exit(main())
