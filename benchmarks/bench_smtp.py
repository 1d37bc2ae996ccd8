"""SMTP benchmark: postbode against a bare smtplib loop, same sink, same connections.

    .venv/bin/python benchmarks/bench_smtp.py [--messages 3000] [--repeat 3]
        [--connections 1,2,4] [--delay-ms 0] [--no-pipelining | --chunking]

Needs only what `./scripts/demo.sh` installs into .venv (no test extras).

The sink (benchmarks/smtp_sink.py) is a separate process that accepts and
discards every mail and offers PIPELINING (with `--chunking` CHUNKING too: postbode
then sends each message with its envelope in BDAT, RFC 3030; smtplib cannot); its CPU share during every run is
printed, so one can see it is not what limits the figures (it should stay well
under 50% of one core). For each number of connections, in turns and repeated
(median and range printed):
- bare smtplib: pre-built bytes, one thread and one `smtplib.SMTP` per connection,
  `sendmail` per message (no journal, nothing built);
- postbode: `campaign.run` end to end (journal, personalised bytes, its SMTP
  transport), the figure taken over the send phase (first to last progress call);
and once per turn a raw client on one connection that pipelines as far as RFC 2920
allows (each message's data together with the next envelope: one round trip a
message): the most one connection can carry here.
Target: postbode at least 0.8x bare at each number of connections, and above bare
where the server offers PIPELINING.
"""
from __future__ import annotations

import argparse
import json
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_send import LOCALES, NEWSLETTER, CampaignRuns, readers, scratch_root, summary  # noqa: E402

from postbode import campaign, message  # noqa: E402

SENDER = "nieuwsbrief@example.org"


class Sink:
    """benchmarks/smtp_sink.py in its own process, asked for its CPU use around each run."""

    def __init__(self, pipelining: bool, delay_ms: float, chunking: bool = False) -> None:
        command = [sys.executable, str(HERE / "smtp_sink.py"), "--delay-ms", str(delay_ms)]
        if not pipelining:
            command.append("--no-pipelining")
        if chunking:
            command.append("--chunking")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self.port = int(self.process.stdout.readline().split()[1])
        self.url = f"smtp://127.0.0.1:{self.port}?tls=none"
        self.shares: list[float] = []

    def mark(self) -> dict:
        self.process.stdin.write("mark\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def measured(self, run: Callable[[], float]) -> tuple[float, float]:
        """(run's msg/s, the sink's CPU share during it)."""
        self.mark()
        rate = run()
        used = self.mark()
        share = used["cpu"] / used["wall"]
        self.shares.append(share)
        return rate, share

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def bare_smtplib(port: int, blobs: list[tuple[str, bytes]], connections: int) -> float:
    """Pre-built bytes, `connections` threads each with its own smtplib connection."""
    parts = [blobs[i::connections] for i in range(connections)]
    ready = threading.Barrier(connections + 1)

    def send(part: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            ready.wait()
            for rcpt, blob in part:
                smtp.sendmail(SENDER, [rcpt], blob)

    threads = [threading.Thread(target=send, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(blobs) / (time.perf_counter() - start)


def _replies(reader, count: int) -> None:
    for _ in range(count):
        line = reader.readline()
        while line[3:4] == b"-":
            line = reader.readline()
        if line[:1] not in (b"2", b"3"):
            raise RuntimeError(f"the sink answered {line!r}")


def raw_pipelined(port: int, blobs: list[tuple[str, bytes]]) -> float:
    """One connection, one round trip a message: data + the next envelope in one write."""
    envelopes = [f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode() for rcpt, _ in blobs]
    bodies = [blob.replace(b"\r\n.", b"\r\n..") + b".\r\n" for _, blob in blobs]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        _replies(reader, 1)
        sock.sendall(b"EHLO bench\r\n")
        _replies(reader, 1)
        start = time.perf_counter()
        sock.sendall(envelopes[0])
        _replies(reader, 3)
        for i, body in enumerate(bodies):
            following = envelopes[i + 1] if i + 1 < len(envelopes) else b""
            sock.sendall(body + following)
            _replies(reader, 4 if following else 1)
        rate = len(blobs) / (time.perf_counter() - start)
        sock.sendall(b"QUIT\r\n")
    return rate


def bench(folder: Path, count: int, repeat: int, connections: list[int], pipelining: bool,
          delay_ms: float, chunking: bool = False) -> None:
    runs = CampaignRuns(folder, count)
    variants = campaign.prepare_variants(runs.settings, folder / NEWSLETTER,
                                         [(loc, None) for loc in LOCALES])
    blobs = [(r.email, message.build(variants[(r.locale, None)], r, "bare", runs.settings).as_bytes())
             for r in readers(count)]
    sink = Sink(pipelining, delay_ms, chunking)
    figures: dict[tuple[str, int], list[tuple[float, float]]] = {}   # (rate, CPU ms a message)

    def bare(n: int) -> float:
        cpu = time.process_time()
        rate = bare_smtplib(sink.port, blobs, n)
        figures.setdefault(("bare", n), []).append((rate, (time.process_time() - cpu) / count * 1000))
        return rate

    def ours(n: int) -> float:
        rate = runs.run(sink.url, n)
        figures.setdefault(("postbode", n), []).append((rate, runs.cpu_ms))
        return rate

    try:
        runs.run(sink.url, 1)                          # warm-up: caches, files, first connection
        for turn in range(repeat):
            for n in connections:
                order = (bare, ours) if turn % 2 == 0 else (ours, bare)
                for kind in order:
                    sink.measured(lambda: kind(n))
            if pipelining:
                figures.setdefault(("raw", 1), []).append(
                    (sink.measured(lambda: raw_pipelined(sink.port, blobs))[0], 0.0))
    finally:
        sink.close()
    offers = ("PIPELINING and CHUNKING" if chunking else "PIPELINING, without CHUNKING") \
        if pipelining else "neither PIPELINING nor CHUNKING"
    report(figures, connections, sink.shares, count, blobs, offers, delay_ms)


def report(figures: dict, connections: list[int], shares: list[float], count: int,
           blobs: list[tuple[str, bytes]], offers: str, delay_ms: float) -> None:
    def rates(key) -> list[float]:
        return [rate for rate, _cpu in figures[key]]

    def cpu(key) -> str:
        return f"{statistics.median(c for _rate, c in figures[key]):.2f} ms CPU a message"

    size = sum(len(b) for _, b in blobs) / count / 1024
    print(f"SMTP to a discarding sink in its own process (offering {offers}, {delay_ms:g} ms "
          f"added per answer), {count} messages of {size:.0f} KB a run")
    for n in connections:
        ratio = statistics.median(rates(("postbode", n))) / statistics.median(rates(("bare", n)))
        print(f"  {n} connection{'s' if n > 1 else ' '}: bare smtplib {summary(rates(('bare', n)))}, "
              f"{cpu(('bare', n))}")
        print(f"                postbode     {summary(rates(('postbode', n)))}, "
              f"{cpu(('postbode', n))} = {ratio:.2f}x bare")
    print(f"  target: postbode >= 0.8x bare at each{', above 1x with PIPELINING' if 'neither' not in offers else ''}"
          "; postbode's CPU includes its journal and building every message")
    if ("raw", 1) in figures:
        print(f"  raw pipelining client, 1 connection (the limit here): {summary(rates(('raw', 1)))}")
    print(f"  sink CPU share during the runs: median {statistics.median(shares):.0%}, "
          f"highest {max(shares):.0%} (must stay under 50%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", default="1,2,4")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--no-pipelining", action="store_true")
    parser.add_argument("--chunking", action="store_true", help="the sink offers CHUNKING too")
    parser.add_argument("--on-disk", action="store_true")
    args = parser.parse_args()
    scratch = scratch_root(args.on_disk)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, temporary folders on {scratch or tempfile.gettempdir()}")
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        bench(Path(folder), args.messages, args.repeat,
              [int(n) for n in args.connections.split(",")], not args.no_pipelining, args.delay_ms,
              args.chunking and not args.no_pipelining)


if __name__ == "__main__":
    main()
