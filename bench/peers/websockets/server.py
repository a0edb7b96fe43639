"""Chat relay on the Python `websockets` library (PyPI), on uvloop, written the way its docs
show a broadcast: keep a set of connections and call `websockets.broadcast` for each message.

Same semantics as fanout's chat app: a welcome text on connect, then every message goes to
every *other* client, text as text and binary as binary. Only /chat is served (404 else).
`broadcast` writes without waiting for slow clients (no backpressure), as the docs describe.

Usage: python server.py [HOST] [PORT]      (default 127.0.0.1 9501)
"""

import asyncio
import http
import itertools
import json
import signal
import sys

from websockets.asyncio.server import broadcast, serve

try:
    import uvloop
except ImportError:  # plain asyncio still works, only slower
    uvloop = None

CLIENTS = set()
IDS = itertools.count(1)


async def chat(ws):
    CLIENTS.add(ws)
    try:
        await ws.send(json.dumps({"type": "welcome", "id": next(IDS)}))
        async for message in ws:  # str for text frames, bytes for binary: the opcode is kept
            broadcast((c for c in CLIENTS if c is not ws), message)
    finally:
        CLIENTS.discard(ws)


def only_chat(connection, request):
    if request.path.split("?")[0] != "/chat":
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
    return None


async def main(host, port):
    # No compression, no server pings (like fanout's --ping-interval off), 1 MiB messages.
    async with serve(chat, host, port, process_request=only_chat, compression=None, ping_interval=None,
                     max_size=1 << 20, backlog=4096, open_timeout=10) as server:
        print(f"websockets listening on ws://{host}:{port}/chat (uvloop: {uvloop is not None})", flush=True)
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        await stop
        server.close()


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9501
    if uvloop is not None:
        uvloop.run(main(host, port))
    else:
        asyncio.run(main(host, port))
