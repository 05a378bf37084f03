#!/usr/bin/python3
"""Fake Kubernetes NodePort services for one lab worker.

Every service answers with the worker's name, so a test can tell which worker
served it:

  TCP  30306 30432 30379  sends "NAME\\n", then closes once the client is done
  HTTP 30080              HTTP/1.1 200, body "NAME\\n" (keep-alive supported)
  UDP  31820              replies "NAME\\n" to every datagram
  TLS  30443              HTTPS (same as 30080) with the lab's certificate
  HTTP 10256              kube-proxy's health endpoint: /healthz answers 200 (every node
                          has it; UDP services' health checks can use it)

One asyncio process serves them all: no fork per connection, so health checks
from many load balancers and benchmark traffic stay cheap on a 2-core machine.

Usage: nodeport.py NAME BIND_ADDRESS [CERT KEY]
"""

import asyncio
import signal
import ssl
import sys

TCP_PORTS = (30306, 30432, 30379)
HTTP_PORT = 30080
TLS_PORT = 30443
HEALTHZ_PORT = 10256
UDP_PORT = 31820
IDLE_TIMEOUT = 30.0


async def drain_then_close(reader, writer):
    """Read until the client closes (bounded), so closing never resets data in flight."""
    try:
        while await asyncio.wait_for(reader.read(4096), IDLE_TIMEOUT):
            pass
    except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


def name_line_handler(line):
    async def handle(reader, writer):
        try:
            writer.write(line)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except ConnectionError:
            writer.close()
            return
        await drain_then_close(reader, writer)

    return handle


def http_handler(body):
    async def handle(reader, writer):
        try:
            while True:
                request = await asyncio.wait_for(
                    reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT
                )
                head = request.decode("latin-1").split("\r\n")
                method, _, version = (head[0].split(" ") + ["", ""])[:3]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (h.partition(":") for h in head[1:] if h)
                }
                length = int(headers.get("content-length", "0") or "0")
                if length:
                    await asyncio.wait_for(reader.readexactly(length), IDLE_TIMEOUT)
                conn = headers.get("connection", "").lower()
                keep = (version == "HTTP/1.1" and conn != "close") or conn == "keep-alive"
                response = (
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    f"Connection: {'keep-alive' if keep else 'close'}\r\n"
                    "\r\n"
                ).encode() + (b"" if method == "HEAD" else body)
                writer.write(response)
                await writer.drain()
                if not keep:
                    break
        except (
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ssl.SSLError,
            ValueError,
        ):
            pass
        writer.close()

    return handle


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, line):
        self.line = line
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(self.line, addr)


async def main():
    name, address = sys.argv[1], sys.argv[2]
    line = (name + "\n").encode()
    servers = [
        await asyncio.start_server(name_line_handler(line), address, port, reuse_address=True)
        for port in TCP_PORTS
    ]
    servers.append(
        await asyncio.start_server(http_handler(line), address, HTTP_PORT, reuse_address=True)
    )
    healthz = ('{"nodeName": "%s", "healthy": true}\n' % name).encode()
    servers.append(
        await asyncio.start_server(
            http_handler(healthz), address, HEALTHZ_PORT, reuse_address=True
        )
    )
    if len(sys.argv) > 4:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sys.argv[3], sys.argv[4])
        servers.append(
            await asyncio.start_server(
                http_handler(line), address, TLS_PORT, ssl=tls, reuse_address=True
            )
        )
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: UdpEcho(line), local_addr=(address, UDP_PORT))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{name}: serving on {address}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
