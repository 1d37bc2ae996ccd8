"""A lean SMTP sink for the benchmarks: accepts every mail and throws it away.

    python benchmarks/smtp_sink.py [--port 0] [--no-pipelining] [--delay-ms 0]

Runs in its own process, so its CPU is not the sender's. It offers PIPELINING
(RFC 2920), 8BITMIME and SMTPUTF8, reads commands and message data in whatever
pieces they arrive and answers every group of pipelined commands in one write.
`--delay-ms` holds every answer back that long, as a server across a network would.

It prints `port N` once it listens. Each line `mark` on its standard input is
answered with one JSON line: CPU seconds this process used, wall seconds and mails
accepted, each since the previous mark, so the caller can show how busy the sink
was during a run (`cpu / wall`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time

END_OF_DATA = b"\r\n.\r\n"


class Counter:
    """Mails accepted over all connections (the event loop is the only writer)."""

    def __init__(self) -> None:
        self.mails = 0


class SinkProtocol(asyncio.Protocol):
    """One SMTP connection: command lines, or message data up to the lone dot."""

    def __init__(self, counter: Counter, ehlo: bytes, delay: float) -> None:
        self.counter = counter
        self.ehlo = ehlo
        self.delay = delay
        self.buffer = bytearray()
        self.in_data = False
        self.scanned = 0          # how far the buffer was searched for the end of data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"220 sink ESMTP ready\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while self._step(replies):
            pass
        if replies:
            self._answer(b"".join(replies))

    def _step(self, replies: list[bytes]) -> bool:
        """Handle one command or one message from the buffer; False when it needs more."""
        buffer = self.buffer
        if self.in_data:
            if buffer.startswith(b".\r\n"):          # an empty message right after DATA
                end = -2
            else:
                end = buffer.find(END_OF_DATA, max(0, self.scanned - 4))
            if end == -1:
                self.scanned = len(buffer)
                return False
            del buffer[:end + 5]
            self.in_data, self.scanned = False, 0
            self.counter.mails += 1
            replies.append(b"250 2.0.0 discarded\r\n")
            return True
        line_end = buffer.find(b"\r\n")
        if line_end == -1:
            return False
        verb = bytes(buffer[:4]).upper()
        del buffer[:line_end + 2]
        replies.append(self._reply(verb))
        return True

    def _reply(self, verb: bytes) -> bytes:
        if verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            return b"250 2.0.0 ok\r\n"
        if verb == b"DATA":
            self.in_data = True
            return b"354 end with <CRLF>.<CRLF>\r\n"
        if verb == b"EHLO":
            return self.ehlo
        if verb == b"HELO":
            return b"250 sink\r\n"
        if verb == b"QUIT":
            return b"221 2.0.0 bye\r\n"       # the connection closes once this is written
        return b"502 5.5.2 not implemented\r\n"

    def _answer(self, payload: bytes) -> None:
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._write, payload)
        else:
            self._write(payload)

    def _write(self, payload: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(payload)
        if payload.endswith(b"bye\r\n"):
            self.transport.close()


def ehlo_reply(pipelining: bool) -> bytes:
    features = ["sink", "8BITMIME", "SMTPUTF8", "SIZE 52428800"] + (["PIPELINING"] if pipelining else [])
    lines = [f"250-{f}" for f in features[:-1]] + [f"250 {features[-1]}"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def report_marks(counter: Counter) -> None:
    """Answer each `mark` on stdin with the CPU, wall time and mails since the previous one."""
    cpu, wall, mails = time.process_time(), time.perf_counter(), 0
    for line in sys.stdin:
        if line.strip() != "mark":
            continue
        now_cpu, now_wall, now_mails = time.process_time(), time.perf_counter(), counter.mails
        print(json.dumps({"cpu": now_cpu - cpu, "wall": now_wall - wall, "mails": now_mails - mails}),
              flush=True)
        cpu, wall, mails = now_cpu, now_wall, now_mails


async def serve(port: int, pipelining: bool, delay: float) -> None:
    counter = Counter()
    ehlo = ehlo_reply(pipelining)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(counter, ehlo, delay), "127.0.0.1", port)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    marks = threading.Thread(target=report_marks, args=(counter,), daemon=True)
    marks.start()
    await asyncio.to_thread(marks.join)     # stdin closed: the caller is done
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-pipelining", action="store_true")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, not args.no_pipelining, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
