"""Schemathesis hooks for scripts/fuzz_api.py: the run may not cut its own credentials.

The fuzzer's token and user are given as FUZZ_TOKEN_ID and FUZZ_USER_ID; requests that would revoke that token,
or deactivate, demote or re-password that user, are not generated (every other id still is).
"""

from __future__ import annotations

import os

import schemathesis

TOKEN_ID = os.environ.get("FUZZ_TOKEN_ID", "")
USER_ID = os.environ.get("FUZZ_USER_ID", "")


@schemathesis.hook
def filter_path_parameters(ctx, path_parameters):  # type: ignore[no-untyped-def]
    if not path_parameters:
        return True
    return str(path_parameters.get("token_id", "")) != TOKEN_ID and str(path_parameters.get("user_id", "")) != USER_ID
