"""Microsoft's Python SDK (powerplatform-dataverse-client) used the way an agent uses it,
pointed at the gateway.

Run by tests/interop.rs with the venv's python and GATEWAY_URL (https: the SDK refuses http;
REQUESTS_CA_BUNDLE names the test CA). Prints ONE JSON object on stdout:
{operation: {"ok": bool, "detail": ...}}. `ok` says whether the SDK call succeeded; for a failure
`detail` holds what the SDK's error exposes (status, code, message). The Rust test decides which
outcome each operation must have. Warnings go to stderr; nothing else is written to stdout.
"""

import json
import os
import sys
import time
import traceback
import warnings

from azure.core.credentials import AccessToken
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import DataverseError, HttpError

LASTNAME = "InteropPy"
BY_NAME = f"lastname eq '{LASTNAME}'"
report = {}


class AnyToken:
    """The gateway holds the real credential; agents may send any token, or (AGENT_TOKEN) their
    own client credential: an Entra token for the gateway or a client key."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(os.environ.get("AGENT_TOKEN", "any"), int(time.time()) + 3600)


def describe(error):
    if isinstance(error, HttpError):
        return {
            "status": error.status_code,
            "code": error.details.get("service_error_code"),
            "message": error.message,
        }
    if isinstance(error, DataverseError):
        return {"status": error.status_code, "code": error.code, "message": error.message}
    return {"status": None, "code": type(error).__name__, "message": str(error)}


def step(name, run):
    try:
        report[name] = {"ok": True, "detail": run()}
    except Exception as error:  # the report carries every failure to the Rust test
        report[name] = {"ok": False, "detail": describe(error)}


def firstname(client, record_id):
    return client.records.retrieve("contact", record_id, select=["firstname"])["firstname"]


def main(client):
    ids = []

    def create():
        ids.append(client.records.create("contact", {"firstname": "P1", "lastname": LASTNAME}))
        return {"id": ids[0]}

    def create_multiple():
        rows = [{"firstname": f"P{n}", "lastname": LASTNAME} for n in range(2, 6)]
        created = client.records.create("contact", rows)
        ids.extend(created)
        return {"ids": created}

    def retrieve():
        row = client.records.retrieve("contact", ids[0], select=["firstname", "lastname"])
        return {"firstname": row["firstname"], "lastname": row["lastname"]}

    def update():
        client.records.update("contact", ids[0], {"firstname": "Renamed"})
        return {"firstname": firstname(client, ids[0])}

    def update_multiple():
        client.records.update("contact", ids[1:3], {"firstname": "Bulk"})
        return {"firstnames": [firstname(client, i) for i in ids[1:3]]}

    def list_paging():
        pages = [
            len(page)
            for page in client.records.list_pages("contact", filter=BY_NAME, select=["firstname"], page_size=2)
        ]
        return {"pages": pages}

    def batch():
        request = client.batch.new()
        request.records.retrieve("contact", ids[0], select=["firstname"])
        request.records.create("contact", {"firstname": "FromBatch", "lastname": LASTNAME})
        with request.changeset() as changeset:
            changeset.records.update("contact", ids[3], {"firstname": "BatchRenamed"})
        result = request.execute()
        return {
            "statuses": [r.status_code for r in result.responses],
            "errors": [r.error_message for r in result.responses if r.error_message],
            "retrieved": (result.responses[0].data or {}).get("firstname") if result.responses else None,
            "entity_ids": result.entity_ids,
            "firstname": firstname(client, ids[3]),
        }

    step("create", create)
    step("create_multiple", create_multiple)
    step("retrieve", retrieve)
    step("update", update)
    step("update_multiple", update_multiple)
    step("list_paging", list_paging)
    step("batch", batch)

    # FOREIGN_TABLE (a logical name), when set: a read of that table.
    if os.environ.get("FOREIGN_TABLE"):
        step("foreign_table", lambda: len(client.records.list(os.environ["FOREIGN_TABLE"], select=["name"])))

    # Forbidden: each must come back as the gateway's 403 GatewayPolicyDenied. For a table outside
    # the allowlist that is already the SDK's first request, its EntityDefinitions lookup.
    step("denied_table", lambda: len(client.records.list("opportunity", select=["name"])))
    step("denied_write", lambda: client.records.create("account", {"name": "Not allowed"}))
    step(
        "denied_expand",
        lambda: dict(client.records.retrieve("contact", ids[0], select=["firstname"], expand=["createdby"])),
    )
    step("denied_sql", lambda: client.query.sql(f"SELECT firstname FROM contact WHERE lastname = '{LASTNAME}'"))


if __name__ == "__main__":
    warnings.simplefilter("default")
    try:
        with DataverseClient(os.environ["GATEWAY_URL"], AnyToken()) as dataverse:
            main(dataverse)
    except Exception:
        report["script"] = {"ok": False, "detail": traceback.format_exc()}
    sys.stdout.write(json.dumps(report, default=str) + "\n")
