"""A lean SMTP sink for the benchmarks: accepts every mail and throws it away.

    python benchmarks/smtp_sink.py [--port 0] [--no-pipelining] [--chunking] [--delay-ms 0]

Runs in its own process, so its CPU is not the sender's. It offers PIPELINING
(RFC 2920), 8BITMIME and SMTPUTF8, with `--chunking` also CHUNKING (RFC 3030:
BDAT), reads commands and message data in whatever
pieces they arrive and answers every group of pipelined commands in one write.
It keeps its own work per read small (see SinkProtocol), so that the figures
measure the client.
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
READ_SIZE = 256 * 1024


class Counter:
    """Mails accepted over all connections (the event loop is the only writer)."""

    def __init__(self) -> None:
        self.mails = 0


class SinkProtocol(asyncio.BufferedProtocol):
    """One SMTP connection: command lines, or message data up to the lone dot.

    The socket reads straight into one buffer of the connection's own (no bytes
    object a read), and message data is not kept: only its last four bytes stay
    in the buffer, in case the end-of-data line is split across two reads.
    """

    def __init__(self, counter: Counter, ehlo: bytes, delay: float) -> None:
        self.counter = counter
        self.ehlo = ehlo
        self.delay = delay
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)
        self.filled = 0           # bytes of the buffer that hold unread input
        self.in_data = False
        self.data_begins = False  # DATA was just accepted: nothing of the message read yet
        self.chunk_left = 0       # bytes of a BDAT chunk still to come
        self.last_chunk = False   # that chunk ends the message (BDAT … LAST)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"220 sink ESMTP ready\r\n")  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.filled == len(self.buffer):             # a command line longer than the buffer
            self.buffer = self.buffer + bytes(len(self.buffer))
            self.view = memoryview(self.buffer)
        return self.view[self.filled:]

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        replies: list[bytes] = []
        start = 0
        while True:
            consumed = self._step(start, replies)
            if consumed is None:
                break
            start = consumed
        self._keep_from(start)
        if replies:
            self._answer(b"".join(replies))

    def _keep_from(self, start: int) -> None:
        """Drop what was handled; in message data keep only the tail the end mark may start in."""
        if self.in_data:
            start = max(start, self.filled - 4)
        if start:
            rest = self.filled - start
            self.buffer[:rest] = self.view[start:self.filled]
            self.filled = rest

    def _step(self, start: int, replies: list[bytes]) -> int | None:
        """Handle one command or one message from `start`; where the next begins, or None."""
        buffer, filled = self.buffer, self.filled
        if self.chunk_left:
            taken = min(self.chunk_left, filled - start)
            if not taken:
                return None
            self.chunk_left -= taken
            if not self.chunk_left:
                replies.append(self._chunk_done())
            return start + taken
        if self.in_data:
            if self.data_begins:                         # an empty message is a lone ".\r\n"
                if filled - start < 3:
                    return None
                self.data_begins = False
                if buffer.startswith(b".\r\n", start):
                    self.in_data = False
                    self.counter.mails += 1
                    replies.append(b"250 2.0.0 discarded\r\n")
                    return start + 3
            end = buffer.find(END_OF_DATA, start, filled)
            if end == -1:
                return None
            self.in_data = False
            self.counter.mails += 1
            replies.append(b"250 2.0.0 discarded\r\n")
            return end + 5
        line_end = buffer.find(b"\r\n", start, filled)
        if line_end == -1:
            return None
        replies.append(self._reply(bytes(buffer[start:line_end])))
        return line_end + 2

    def _chunk_done(self) -> bytes:
        if self.last_chunk:
            self.counter.mails += 1
            return b"250 2.0.0 discarded\r\n"
        return b"250 2.0.0 chunk received\r\n"

    def _bdat(self, line: bytes) -> bytes | None:
        """BDAT <size> [LAST]: the next <size> bytes are message data; None once they are in."""
        words = line.split()
        if len(words) not in (2, 3) or not words[1].isdigit():
            return b"501 5.5.4 syntax: BDAT <size> [LAST]\r\n"
        self.chunk_left, self.last_chunk = int(words[1]), len(words) == 3
        return None if self.chunk_left else self._chunk_done()

    def _reply(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb == b"BDAT" and b"CHUNKING" in self.ehlo:
            reply = self._bdat(line)
            return reply or b""          # answered once the chunk is in
        if verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            return b"250 2.0.0 ok\r\n"
        if verb == b"DATA":
            self.in_data = self.data_begins = True
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


def ehlo_reply(pipelining: bool, chunking: bool = False) -> bytes:
    features = (["sink", "8BITMIME", "SMTPUTF8", "SIZE 52428800"] + (["PIPELINING"] if pipelining else [])
                + (["CHUNKING"] if chunking else []))
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


async def serve(port: int, pipelining: bool, delay: float, chunking: bool = False) -> None:
    counter = Counter()
    ehlo = ehlo_reply(pipelining, chunking)
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
    parser.add_argument("--chunking", action="store_true", help="offer CHUNKING (BDAT) too")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, not args.no_pipelining, args.delay_ms / 1000, args.chunking))


if __name__ == "__main__":
    main()
