"""A null HTTP/1.1 server (raw asyncio protocol on uvloop) used to measure the load generator's own ceiling.

It answers every request with a fixed 200 JSON body, as fast as Python can parse and write; if the generator
keeps its schedule against it at a rate well above the servers' saturation, the generator is not what limits
the figures. Run: ``python bench/null_server.py --port 8199``.
"""

from __future__ import annotations

import argparse
import asyncio

BODY = b'{"ok":true,"duplicate":false,"conversation_id":1,"message_id":1}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)) + BODY


class NullProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            i = head.find(b"\r\ncontent-length:")
            length = 0
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                length = int(head[i + 17: j if j >= 0 else end])
            total = end + 4 + length
            if len(buf) < total:
                return
            del buf[:total]
            assert self.transport is not None
            self.transport.write(RESPONSE)


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(NullProtocol, host, port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8199)
    args = p.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
