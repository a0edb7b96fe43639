"""Chat relay on picows (PyPI), the fast Python WebSocket library, on uvloop with aiofastnet
(picows uses aiofastnet's transports when it is installed).

Same semantics as fanout's chat app: a welcome text on connect, then every message goes to
every *other* client, text as text and binary as binary. Only /chat is served (404 else).
picows hands out frames, not messages, so a fragmented message is reassembled here before it
is relayed.

Usage: python server.py [HOST] [PORT]      (default 127.0.0.1 9501)
"""

import asyncio
import json
import signal
import sys

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

try:
    import uvloop
except ImportError:  # plain asyncio still works, only slower
    uvloop = None

MAX_MESSAGE = 1 << 20  # like fanout's default --max-message-size


class Room:
    """The open connections and the next connection id."""

    def __init__(self):
        self.members = set()
        self.next_id = 1


class ChatClient(WSListener):
    """One connection: relays each complete message to every other member of the room."""

    def __init__(self, room):
        self.room = room
        self.transport = None
        self.kind = None  # opcode of a fragmented message in progress
        self.parts = None

    def on_ws_connected(self, transport: WSTransport):
        self.transport = transport
        welcome = json.dumps({"type": "welcome", "id": self.room.next_id})
        self.room.next_id += 1
        self.room.members.add(transport)
        transport.send(WSMsgType.TEXT, welcome.encode())

    def on_ws_disconnected(self, transport: WSTransport):
        self.room.members.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame):
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self.parts is not None:
                return self.fail(WSCloseCode.PROTOCOL_ERROR)
            if frame.fin:
                return self.relay(kind, frame.get_payload_as_bytes())
            self.kind, self.parts = kind, [frame.get_payload_as_bytes()]
        elif kind is WSMsgType.CONTINUATION:
            if self.parts is None:
                return self.fail(WSCloseCode.PROTOCOL_ERROR)
            self.parts.append(frame.get_payload_as_bytes())
            if sum(map(len, self.parts)) > MAX_MESSAGE:
                return self.fail(WSCloseCode.MESSAGE_TOO_BIG)
            if frame.fin:
                payload, self.parts = b"".join(self.parts), None
                self.relay(self.kind, payload)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        # PING is answered by picows itself (enable_auto_pong); PONG needs nothing.

    def relay(self, kind, payload):
        me = self.transport
        for other in self.room.members:
            if other is not me:
                other.send(kind, payload)

    def fail(self, code):
        self.transport.send_close(code)
        self.transport.disconnect()


async def main(host, port):
    room = Room()

    def route(request: WSUpgradeRequest):
        return ChatClient(room) if request.path.split(b"?")[0] == b"/chat" else None

    server = await ws_create_server(route, host, port, backlog=4096, max_frame_size=MAX_MESSAGE,
                                    websocket_handshake_timeout=10)
    print(f"picows listening on ws://{host}:{port}/chat (uvloop: {uvloop is not None})", flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9501
    if uvloop is not None:
        uvloop.run(main(host, port))
    else:
        asyncio.run(main(host, port))
