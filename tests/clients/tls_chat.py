"""wss:// chat with Python's `websockets` and an `ssl` context trusting only
the test CA: two clients on one room, each message reaches the other, and
the certificate is checked for the name the client used (localhost).

Usage: tls_chat.py PORT CA_FILE. Exits 0 only when every check passed.
"""

import asyncio
import json
import ssl
import sys

import websockets


async def main(port: int, ca_file: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    url = f"wss://localhost:{port}/chat/tls-room"
    async with websockets.connect(url, ssl=context) as alice, websockets.connect(url, ssl=context) as bob:
        for client in (alice, bob):
            welcome = json.loads(await asyncio.wait_for(client.recv(), 10))
            assert welcome["type"] == "welcome", welcome
        await alice.send("hello bob, over TLS")
        got = await asyncio.wait_for(bob.recv(), 10)
        assert got == "hello bob, over TLS", got
        await bob.send("hello alice")
        got = await asyncio.wait_for(alice.recv(), 10)
        assert got == "hello alice", got
    # The certificate is for localhost and 127.0.0.1 only.
    try:
        other = "chat.example.com"
        async with websockets.connect(f"wss://127.0.0.1:{port}/chat", ssl=context, server_hostname=other):
            raise AssertionError("a certificate for another name was accepted")
    except ssl.SSLCertVerificationError:
        pass
    print("tls_chat.py: ok")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
