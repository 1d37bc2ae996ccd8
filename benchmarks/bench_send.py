"""Sending benchmark: the per-recipient fast path, SMTP end to end, and memory as the list grows.

    python benchmarks/bench_send.py [--recipients 3000] [--smtp 5000] [--sizes 10000,100000]

Prints figures and ratios against baselines measured in the same run:
1. fast path — messages built per second by `message.build` + `as_bytes` (render and
   inline once per variant), and whole campaigns through the outbox (journal
   included), against the naive path (localize + render + inline + EmailMessage
   for every recipient). Targets: at least 50x and 3,000 messages/s.
2. SMTP — `campaign.run` to a local sink against a bare smtplib loop sending the
   same pre-built bytes to the same sink over one connection. The sink is aiosmtpd
   with a handler that accepts and discards every message, in a separate process.
   Target: at least 80% of the bare loop.
3. memory — campaigns of 10,000 and 100,000 recipients through the outbox, each in
   a fresh process, with the campaign's peak RSS (VmHWM, reset after the list is imported).
   Target: below 250 MB and flat.
   1,000,000 through the outbox is not run by default (--sizes 10000,100000,1000000
   to try): its outbox alone is about 20 GB of .eml files. So the same campaigns
   are also run with a transport that builds every message's bytes and discards
   them (--discard-sizes, default 10000,100000,1000000): everything of postbode's
   but the file writes, up to a million recipients.
Everything runs in temporary folders (on tmpfs when /dev/shm exists, so the
figures measure postbode rather than the disk; say --on-disk to use the disk).
"""
from __future__ import annotations

import argparse
import email.policy
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from postbode import audience, campaign, db, message, transports  # noqa: E402
from postbode.audience import Recipient  # noqa: E402
from postbode.config import Settings, load_settings  # noqa: E402
from postbode.transports.base import SendResult, Status, Transport  # noqa: E402

NEWSLETTER = "newsletters/2018-07-resultaten.yaml"
PROJECT_PARTS = ("postbode.toml", "newsletters", "templates", "locales", "subscribers")
LOCALES = ("nl", "en", "de", "ar", "nl_BE")
SECRET = "benchmark-signing-key-not-secret"
SINK = """
import sys, time
from aiosmtpd.controller import Controller
class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 discarded"
controller = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""


def scratch_root(on_disk: bool) -> Path | None:
    shm = Path("/dev/shm")
    return None if on_disk or not shm.is_dir() else shm


def make_project(folder: Path, recipients: int) -> Settings:
    """A copy of the sample project with `recipients` made-up subscribers imported."""
    for part in PROJECT_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, folder / part, ignore=shutil.ignore_patterns("*.mo"))
        elif src.is_file():
            shutil.copy2(src, folder / part)
    toml = folder / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('= "require"', '= "fallback"'),
                    encoding="utf-8")
    settings = load_settings(toml, env={"POSTBODE_SECRET_KEY": SECRET})
    csv_path = folder / "people.csv"
    with csv_path.open("w", encoding="utf-8") as fh:
        fh.write("email;naam;taal;aanhef\n")
        for i in range(1, recipients + 1):
            fh.write(f"r{i}@example.org;Lezer {i};{LOCALES[i % 5]};{'u' if i % 2 else 'je'}\n")
    conn = db.connect(settings.database)
    audience.import_csv(conn, csv_path, "subscribers", settings)
    conn.close()
    return settings


def readers(n: int) -> list[Recipient]:
    return [Recipient(i, f"r{i}@example.org", f"Lezer {i}", LOCALES[i % 5],
                      "formal" if i % 2 else "informal", None, "everyone") for i in range(n)]


# ---------------------------------------------------------------- 1. fast path vs naive

def naive_message(settings: Settings, newsletter, recipient: Recipient) -> bytes:
    """What a straightforward sender does: everything again for every recipient."""
    from postbode.i18n import localize
    from postbode.inline import inline
    from postbode.render import render

    rendered = inline(render(localize(newsletter, recipient.locale, settings), None, settings))
    greeting = rendered.greetings[recipient.formality].replace("NAME", recipient.name or "")
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = settings.sender_email
    mail["To"] = recipient.email
    mail["Subject"] = rendered.subject
    mail.set_content(rendered.text.replace("__PB_GREETING__", greeting))
    mail.add_alternative(rendered.html.replace("__PB_GREETING__", greeting), subtype="html")
    return mail.as_bytes()


def bench_fast_path(folder: Path, count: int) -> None:
    from postbode.content import load_newsletter

    settings = make_project(folder, count)
    newsletter = load_newsletter(folder / NEWSLETTER)
    people = readers(count)
    start = time.perf_counter()
    variants = campaign.prepare_variants(settings, folder / NEWSLETTER,
                                         sorted({(r.locale, None) for r in people}))
    prepare_s = time.perf_counter() - start
    naive_n = 20
    start = time.perf_counter()
    for r in people[:naive_n]:
        naive_message(settings, newsletter, r)
    naive_rate = naive_n / (time.perf_counter() - start)
    start = time.perf_counter()
    size = 0
    for r in people:
        size += len(message.build(variants[(r.locale, None)], r, "bench", settings).as_bytes())
    build_rate = count / (time.perf_counter() - start)

    start = time.perf_counter()
    outcome = campaign.run(settings, folder / NEWSLETTER, ["everyone"],
                           transport="outbox://outbox")
    run_s = time.perf_counter() - start
    assert outcome.totals["sent"] == count
    print(f"1. fast path ({count} recipients, {len(variants)} variants, "
          f"{size / count / 1024:.0f} KB a message)")
    print(f"   naive (render + inline + EmailMessage each): {naive_rate:9.1f} msg/s")
    print(f"   render + inline once per variant (cold):     {prepare_s:9.2f} s")
    print(f"   message.build + as_bytes per recipient:      {build_rate:9.0f} msg/s "
          f"= {build_rate / naive_rate:.0f}x naive (target >= 50x, >= 3000 msg/s)")
    print(f"   whole campaign to the outbox (journal, files, variants included): "
          f"{count / run_s:.0f} msg/s = {count / run_s / naive_rate:.0f}x naive")


# ---------------------------------------------------------------- 2. SMTP vs bare smtplib

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink() -> tuple[subprocess.Popen, int]:
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    return sink, port


def bare_loop(port: int, blobs: list[tuple[str, bytes]]) -> float:
    """Pre-built bytes over one smtplib connection: the ceiling for one connection."""
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for rcpt, blob in blobs:
            smtp.sendmail("nieuwsbrief@example.org", [rcpt], blob)
    return len(blobs) / (time.perf_counter() - start)


def bench_smtp(folder: Path, count: int) -> None:
    settings = make_project(folder, count)
    variants = campaign.prepare_variants(settings, folder / NEWSLETTER,
                                         [(loc, None) for loc in LOCALES])
    blobs = [(r.email, message.build(variants[(r.locale, None)], r, "bare", settings).as_bytes())
             for r in readers(count)]
    sink, port = start_sink()
    try:
        bare = bare_loop(port, blobs)
        marks: list[float] = []
        start = time.perf_counter()
        outcome = campaign.run(settings, folder / NEWSLETTER, ["everyone"],
                               transport=f"smtp://127.0.0.1:{port}?tls=none",
                               progress=lambda done, total: marks.append(time.perf_counter()))
        whole = count / (time.perf_counter() - start)
        assert outcome.totals["sent"] == count
    finally:
        sink.stdin.close()
        sink.wait(timeout=30)
    sending = count / (marks[-1] - marks[0]) if len(marks) > 1 else whole
    print(f"2. SMTP to aiosmtpd (discarding handler, separate process), {count} messages")
    print(f"   bare smtplib loop, pre-built bytes, 1 connection: {bare:7.0f} msg/s")
    print(f"   postbode send phase ({settings.concurrency} connections, journal):"
          f" {sending:7.0f} msg/s = {sending / bare:.0%} of bare (target >= 80%)")
    print(f"   postbode whole command (snapshot, variants, send): {whole:7.0f} msg/s "
          f"= {whole / bare:.0%} of bare")


# ---------------------------------------------------------------- 3. memory as the list grows

class DiscardTransport(Transport):
    """Builds each message's bytes, as a transport must, then drops them."""

    scheme = "discard"
    max_batch = 500

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send_batch(self, messages):
        return [SendResult(m.message_id, Status.SENT, None, f"{len(m.as_bytes())} bytes", None)
                for m in messages]


def from_url(url, settings, env) -> DiscardTransport:
    """`discard://`, known only inside this benchmark's child processes."""
    return DiscardTransport()


def memory_child(folder: str, count: int, transport: str) -> None:
    """In a fresh process: import, send through `transport`, report peak RSS."""
    if transport.startswith("discard:"):
        transports.SCHEMES["discard"] = "__main__"
    settings = make_project(Path(folder), count)
    import_peak = peak_rss_mb()
    # The import of the made-up list is not what is measured: start the peak afresh.
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    outcome = campaign.run(settings, Path(folder) / NEWSLETTER, ["everyone"],
                           transport=transport)
    seconds = time.perf_counter() - start
    print(json.dumps({"sent": outcome.totals["sent"], "seconds": seconds,
                      "peak_mb": peak_rss_mb(), "import_peak_mb": import_peak}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_memory(scratch: Path | None, sizes: list[int], transport: str = "outbox://outbox"
                 ) -> None:
    print(f"3. memory: campaigns through {transport}, each in a fresh process")
    first = None
    for count in sizes:
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            out = subprocess.run([sys.executable, __file__, "--memory-child", folder, str(count),
                                  transport], check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        first = first or result["peak_mb"]
        print(f"   {count:>9,} recipients: peak RSS {result['peak_mb']:6.0f} MB "
              f"({result['peak_mb'] / first:.2f}x the smallest; target < 250 MB), "
              f"{result['sent'] / result['seconds']:6.0f} msg/s "
              f"(the import before it peaked at {result['import_peak_mb']:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--smtp", type=int, default=5000)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--on-disk", action="store_true")
    parser.add_argument("--discard-sizes", default="10000,100000,1000000")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), args.memory_child[2])
        return
    scratch = scratch_root(args.on_disk)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"temporary folders on {scratch or 'the disk (' + tempfile.gettempdir() + ')'}")
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        bench_fast_path(Path(folder), args.recipients)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        bench_smtp(Path(folder), args.smtp)
    bench_memory(scratch, [int(s) for s in args.sizes.split(",")])
    if args.discard_sizes:
        bench_memory(scratch, [int(s) for s in args.discard_sizes.split(",")], "discard://")


if __name__ == "__main__":
    main()
