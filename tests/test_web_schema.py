"""The REST API fuzzed from its own OpenAPI schema (schemathesis): whatever a client sends that
the schema allows, or nearly allows, the API answers without a server error, with a status and
a body its schema documents. An admin token, so every operation runs past authentication; a
database with tasks in it, so ids and filters find things."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Any

import hypothesis
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from web_support import BASE

import corral
from corral.web import create_app
from corral.web.auth import Tokens

_FOLDER = tempfile.mkdtemp(prefix="corral-schema-")
atexit.register(shutil.rmtree, _FOLDER, True)
APP = corral.App(f"sqlite:///{_FOLDER}/fuzz.db")
atexit.register(APP.close)


@APP.task
def noop(ctx: Any, n: int = 0) -> int:
    return n


for _group in ("default", "client-7/loads", "client-8"):
    for _ in range(3):
        noop.submit(group=_group)
SITE = create_app(APP)
TOKEN = Tokens(APP.store, APP.clock).create("admin", name="fuzz").secret
schema = schemathesis.openapi.from_dict(SITE.openapi())
schema.app = SITE


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))  # fmt: skip
def test_the_api_keeps_to_its_schema(case: Any) -> None:
    # Not `positive_data_acceptance`: an opaque cursor the schema can only type as a string is
    # refused (422, naming it) unless this API made it.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}", "Origin": BASE},
        excluded_checks=[positive_data_acceptance],
    )
