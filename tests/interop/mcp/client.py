"""The official MCP Python SDK (PyPI `mcp`) driving the gateway's MCP front door.

Run by tests/mcp_interop.rs with the venv's python and MCP_URL. Connects twice: once with the
`initialize` handshake (mode="legacy") and once the stateless 2026-07-28 way (mode="auto":
the SDK probes `server/discover` and adopts the modern revision). Each time: list the tools,
list and describe tables, query with paging (cursor), create, update, a denied call, WhoAmI.
Prints ONE JSON object on stdout: {era: {operation: {"ok": bool, "detail": ...}}}; the Rust test
decides which outcome each operation must have. Nothing else is written to stdout.
"""

import asyncio
import json
import os
import sys
import traceback

from mcp import Client

URL = os.environ["MCP_URL"]
report = {}


def structured(result):
    """A tool result as (ok, structuredContent)."""
    return (not result.is_error, result.structured_content)


async def session(era, mode):
    out = report.setdefault(era, {})

    async def op(name, coro):
        try:
            ok, detail = await coro
            out[name] = {"ok": ok, "detail": detail}
        except Exception as e:  # the SDK's own error for a JSON-RPC error answer
            out[name] = {"ok": False, "detail": {"exception": type(e).__name__, "message": str(e)}}
        return out[name]

    async with Client(URL, mode=mode) as client:
        out["protocol_version"] = {"ok": True, "detail": client.protocol_version}

        async def tools():
            listed = await client.list_tools()
            return True, [t.name for t in listed.tools]

        await op("tools", tools())
        await op("list_tables", structured_call(client, "list_tables", {}))
        await op("describe", structured_call(client, "describe_table", {"table": "contacts"}))

        async def paging():
            pages, cursor, rows = [], None, []
            while True:
                args = {"cursor": cursor} if cursor else {"table": "contacts", "select": ["fullname"], "page_size": 3}
                r = await client.call_tool("query", args)
                if r.is_error:
                    return False, r.structured_content
                pages.append(len(r.structured_content["rows"]))
                rows += [row["contactid"] for row in r.structured_content["rows"]]
                cursor = r.structured_content.get("cursor")
                if not cursor or len(pages) > 10:
                    return True, {"pages": pages, "ids": rows}

        await op("query_paging", paging())
        created = await op(
            "create",
            structured_call(client, "create", {"table": "contacts", "record": {"firstname": era, "lastname": "McpSdk"}}),
        )
        new_id = (created.get("detail") or {}).get("id")
        await op("update", structured_call(client, "update", {"table": "contacts", "id": new_id or "", "record": {"lastname": "McpSdkRenamed"}}))
        await op("read_back", structured_call(client, "get", {"table": "contacts", "id": new_id or "", "select": ["lastname"]}))
        await op("denied", structured_call(client, "query", {"table": "leads"}))
        await op("whoami", structured_call(client, "WhoAmI", {}))


async def structured_call(client, name, args):
    return structured(await client.call_tool(name, args))


async def main():
    await session("legacy", "legacy")
    await session("modern", "auto")


try:
    asyncio.run(main())
except Exception:
    report["script"] = traceback.format_exc()
json.dump(report, sys.stdout, default=str)
sys.stdout.write("\n")
