"""An upstream built on the official MCP Python SDK (FastMCP, mcp 1.x), for interop tests.

It serves the upstream's tools by passing each call on to a backend MCP server (the embedded
population served by `icp mcp-serve`'s router) through the SDK's own client, and answers the way
FastMCP servers in the wild do:

- ``--shape string``: each tool returns its JSON as a string, so FastMCP answers it as text and
  again as ``structuredContent: {"result": "<the JSON>"}``;
- ``--shape object``: each tool returns a dict, so ``structuredContent`` is the object itself;
- ``--json-response``: plain JSON answers instead of SSE streams;
- ``--forget-session-every N``: every Nth request of a session answers 404, and so does every
  later one of that session, as a server does that lost it (a restart, an idle timeout);
- ``--rate-limit-every N``: every Nth tool call answers 429 with ``Retry-After: 1``.

A backend tool failure is raised as an exception, which FastMCP answers with ``isError`` and the
message as text. The server binds 127.0.0.1 on a free port and prints ``listening HOST:PORT``,
then ``fault 404`` or ``fault 429`` for each fault it injects.
"""

import argparse
import asyncio
import inspect
import json
import socket
import sys
from typing import Any

import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.server.fastmcp import FastMCP

# Each tool's parameters as the upstream names them: (required, optional).
TOOLS = {
    "resolve_identities": (["multi_identifiers"], ["format", "workflow_id"]),
    "get_person": (["person_ids"], ["domains", "format", "workflow_id"]),
    "list_clusters": (
        [],
        [
            "cluster_names",
            "cluster_ids",
            "cluster_hashes",
            "domains",
            "limit",
            "offset",
            "workflow_id",
        ],
    ),
    "get_cluster": ([], ["cluster_id", "cluster_hash", "workflow_id"]),
    "find_persons": (
        ["expression"],
        ["identifier_type", "location", "audience_limit", "format", "workflow_id"],
    ),
    "submit_feedback": (["message"], ["workflow_id", "tool_trace_ids", "rating"]),
}


class Backend:
    """One client session to the backend, owned by a task of its own: the SDK's client holds
    task groups that must be entered and left by one task, not by the request that used it
    first."""

    def __init__(self, url: str):
        self.url = url
        self.session: ClientSession | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with streamablehttp_client(self.url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                self.session = session
                self.ready.set()
                await asyncio.Event().wait()

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        await self.ready.wait()
        result = await self.session.call_tool(name, arguments)
        text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        if result.isError:
            raise RuntimeError(text or f"{name} failed")
        if result.structuredContent is not None:
            return result.structuredContent
        return json.loads(text)


def build(backend: Backend, shape: str, json_response: bool) -> FastMCP:
    server = FastMCP("fastmcp-upstream", json_response=json_response, log_level="WARNING")

    def register(name: str, required: list[str], optional: list[str]) -> None:
        returns = str if shape == "string" else dict[str, Any]

        async def tool(**arguments: Any) -> Any:
            # The arguments pass through as they came (the backend checks them).
            given = {k: v for k, v in arguments.items() if v is not None}
            payload = await backend.call(name, given)
            return json.dumps(payload) if shape == "string" else payload

        # FastMCP derives the input schema from the signature: declare the upstream's.
        P = inspect.Parameter
        tool.__signature__ = inspect.Signature(
            [P(n, P.KEYWORD_ONLY, annotation=Any) for n in required]
            + [P(n, P.KEYWORD_ONLY, default=None, annotation=Any) for n in optional],
            return_annotation=returns,
        )
        server.add_tool(tool, name=name, description=f"{name}, served by FastMCP")

    for name, (required, optional) in TOOLS.items():
        register(name, required, optional)
    return server


def with_faults(app, forget_every: int, rate_limit_every: int):
    """ASGI middleware that forgets sessions and rate-limits tool calls, on a count."""
    requests_of: dict[str, int] = {}
    forgotten: set[str] = set()
    tool_calls = 0

    async def refuse(send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def faulty(scope, receive, send):
        nonlocal tool_calls
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        headers = dict(scope["headers"])
        session = headers.get(b"mcp-session-id", b"").decode()
        # The body is read here to see what the request is, then handed on unchanged.
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        if session:
            if session in forgotten:
                return await refuse(send, 404, [])
            requests_of[session] = requests_of.get(session, 0) + 1
            if forget_every and requests_of[session] % forget_every == 0:
                forgotten.add(session)
                print("fault 404", flush=True)
                return await refuse(send, 404, [])
        if rate_limit_every and b'"tools/call"' in body:
            tool_calls += 1
            if tool_calls % rate_limit_every == 0:
                print("fault 429", flush=True)
                return await refuse(send, 429, [(b"retry-after", b"1")])
        return await app(scope, replay, send)

    return faulty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, help="the backend MCP endpoint URL")
    parser.add_argument("--shape", choices=["string", "object"], default="string")
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--forget-session-every", type=int, default=0)
    parser.add_argument("--rate-limit-every", type=int, default=0)
    args = parser.parse_args()

    backend = Backend(args.backend)
    server = build(backend, args.shape, args.json_response)
    app = with_faults(
        server.streamable_http_app(), args.forget_session_every, args.rate_limit_every
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"listening {host}:{port}", flush=True)

    async def serve() -> None:
        connected = asyncio.create_task(backend.run())
        await uvicorn.Server(config).serve(sockets=[sock])
        connected.cancel()

    asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
