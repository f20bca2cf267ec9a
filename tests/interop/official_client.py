"""The official MCP Python SDK's client (ClientSession over streamable HTTP) against an MCP server.

Lists the server's tools, checks each has an object input schema, then calls every one with
arguments a real client would send, in the order a job would: resolve an email, enrich the
person, list clusters, read one, find an audience, send feedback. Prints one JSON object that
says what each call answered; exits non-zero on any failure.

    python official_client.py --url http://127.0.0.1:PORT/mcp --email someone@example.com
"""

import argparse
import asyncio
import json
import sys
from typing import Any

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> Any:
    result = await session.call_tool(name, arguments)
    text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    if result.isError:
        raise SystemExit(f"{name} failed: {text}")
    return result.structuredContent if result.structuredContent is not None else json.loads(text)


async def run(url: str, email: str) -> dict[str, Any]:
    async with streamablehttp_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            listed = await session.list_tools()
            schemas = {}
            for tool in listed.tools:
                schema = tool.inputSchema
                if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
                    raise SystemExit(f"{tool.name}: input schema is not an object: {schema}")
                schemas[tool.name] = sorted(schema.get("properties", {}))

            resolved = await call(
                session,
                "resolve_identities",
                {"multi_identifiers": [{"id_type": "email", "hash_type": "plaintext", "values": [email]}]},
            )
            workflow = resolved.get("workflow_id")
            person = resolved["identities"][0]["person_id"]
            profiles = await call(
                session, "get_person", {"person_ids": [person], "workflow_id": workflow}
            )
            page = await call(
                session,
                "list_clusters",
                {"cluster_names": ["gender"], "limit": 10, "workflow_id": workflow},
            )
            first = page["clusters"][0]
            cluster = await call(
                session,
                "get_cluster",
                {"cluster_hash": first["cluster_hash"], "workflow_id": workflow},
            )
            found = await call(
                session,
                "find_persons",
                {"expression": first["cluster_hash"], "workflow_id": workflow},
            )
            feedback = await call(
                session,
                "submit_feedback",
                {"workflow_id": workflow, "message": "interop check", "rating": 5},
            )
            return {
                "server": init.serverInfo.name,
                "protocol": init.protocolVersion,
                "tools": schemas,
                "resolved": resolved["stats"]["resolved"],
                "profiles": len(profiles["profiles"]),
                "profile_person": str(profiles["profiles"][0]["person_id"]),
                "person": str(person),
                "clusters": len(page["clusters"]),
                "cluster_size": cluster["cluster"]["size"],
                "first_size": first["size"],
                "found": found["total"],
                "sample": len(found.get("sample", [])),
                "feedback": feedback["accepted"],
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--email", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.email))))


if __name__ == "__main__":
    sys.exit(main())
