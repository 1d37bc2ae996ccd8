"""Sending benchmark: the per-recipient fast path, the outbox, and memory as the list grows.

    .venv/bin/python benchmarks/bench_send.py [--recipients 3000] [--outbox 10000]
        [--repeat 3] [--sizes 10000,100000] [--discard-sizes 10000,100000,1000000]
        [--once 100000] [--once-snapshot-only] [--only fast,outbox,memory,once]

Needs only what `./scripts/demo.sh` installs into .venv (no test extras). SMTP has
its own benchmark, benchmarks/bench_smtp.py. Prints figures and ratios against
baselines measured in the same run, each repeated (median and range):
1. fast path: messages built per second by `message.build` + `as_bytes` (render
   and inline once per variant) against the naive path (localize + render + inline
   + EmailMessage for every recipient), warmed up and timed over at least 3 s;
   and `as_bytes` against encoding each whole body for every recipient (what it
   did before bodies were encoded once per variant). Targets: at least 50x the
   naive path and 3,000 messages/s.
2. outbox: pre-built messages through the outbox transport against plain file
   creation of the same bytes under the same names (os.open, os.write, os.close),
   and whole campaigns through the outbox (journal included) on 1 and 2 workers.
   Target: the transport at least 0.6x plain file creation.
3. memory: campaigns of 10,000 and 100,000 recipients through the outbox, each in
   a fresh process, with the campaign's peak RSS (VmHWM, reset after the list is
   imported). Target: below 250 MB and flat. 1,000,000 through the outbox is not
   run by default (its outbox alone is about 20 GB of .eml files), so the same
   campaigns also run with a transport that builds every message's bytes and
   discards them (--discard-sizes): everything of postbode's but the file writes.
4. once per person per newsletter: whole campaigns (snapshot included: that is where
   the rule works) of --once recipients through the discard transport, with the rule
   against the previous rule (no "already received" check) in the same run, alternating;
   and the snapshot phase alone, the same way (what the rule adds, in seconds, and its
   share of a whole campaign).
   The journal already holds a sent row for every recipient from a campaign of another
   issue, so every recipient's check finds rows and has to look at them. Target: the rule
   costs under 10% (ratio >= 0.90). A third figure: the same campaign when 40% of the
   list already had this issue (they are left out; its rate counts the mails sent).
5. state database (--only postgres, benchmarks/bench_postgres.py): one campaign through
   discard:// on SQLite with 1 sender and on PostgreSQL with 1 and 2 sending processes.
Everything runs in temporary folders (on tmpfs when /dev/shm exists, so the
figures measure postbode rather than the disk; say --on-disk to use the disk).
"""
from __future__ import annotations

import argparse
import binascii
import importlib
import email.policy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from postbode import audience, campaign, message, store, transports  # noqa: E402
from postbode.audience import Recipient  # noqa: E402
from postbode.config import Settings, load_settings  # noqa: E402
from postbode.transports.base import SendResult, Status, Transport  # noqa: E402
from postbode.transports.outbox import OutboxTransport, file_name  # noqa: E402

NEWSLETTER = "newsletters/2018-07-resultaten.yaml"
PROJECT_PARTS = ("postbode.toml", "newsletters", "templates", "locales", "subscribers")
LOCALES = ("nl", "en", "de", "ar", "nl_BE")
SECRET = "benchmark-signing-key-not-secret"


def scratch_root(on_disk: bool) -> Path | None:
    shm = Path("/dev/shm")
    return None if on_disk or not shm.is_dir() else shm


def make_project(folder: Path, recipients: int) -> Settings:
    """A copy of the sample project with `recipients` made-up subscribers imported."""
    folder.mkdir(parents=True, exist_ok=True)
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
    conn = store.connect(settings)
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


def summary(rates: list[float], unit: str = "msg/s") -> str:
    """Median, range and number of runs of a list of rates."""
    return (f"{statistics.median(rates):8.0f} {unit} (range {min(rates):.0f}-{max(rates):.0f}, "
            f"{len(rates)} runs)")


def rates_over(work: Callable[[int], None], items: int, seconds: float, rounds: int = 3) -> list[float]:
    """Items per second of `work(i)`, warmed up, in `rounds` rounds of at least `seconds` each."""
    work(0)
    work(1)
    rates, i = [], 2
    for _ in range(rounds):
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds or done < items:
            work(i)
            i, done = i + 1, done + 1
        rates.append(done / (time.perf_counter() - start))
    return rates


def repeated(work: Callable[[], float], repeat: int) -> list[float]:
    work()                                          # warm-up
    return [work() for _ in range(repeat)]


class CampaignRuns:
    """campaign.run again and again on a fresh copy of the same imported list."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = folder
        self.settings = make_project(folder, count)
        self.count = count
        self.pristine = folder / "pristine.sqlite3"
        shutil.copy2(self.settings.database, self.pristine)
        self.cpu_ms = 0.0             # CPU per message of the last run's send phase

    def run(self, url: str, workers: int, *, send_phase: bool = True) -> float:
        """Messages per second: over the send phase (first to last progress call) or the whole run."""
        database = self.settings.database
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copy2(self.pristine, database)
        marks: list[tuple[float, float, int]] = []

        def progress(done: int, total: int) -> None:
            marks.append((time.perf_counter(), time.process_time(), done))

        start = time.perf_counter()
        outcome = campaign.run(self.settings.with_overrides(concurrency=workers),
                               self.folder / NEWSLETTER, ["everyone"], transport=url,
                               progress=progress)
        whole = self.count / (time.perf_counter() - start)
        assert outcome.totals["sent"] == self.count, outcome.totals
        (t0, cpu0, done0), (t1, cpu1, done1) = marks[0], marks[-1]
        # this process's CPU (every thread) per message over the send phase
        self.cpu_ms = (cpu1 - cpu0) / max(1, done1 - done0) * 1000
        return (done1 - done0) / (t1 - t0) if send_phase and t1 > t0 else whole


def whole_body_bytes(mail: message.OutgoingMessage) -> int:
    """The encoding work as_bytes did before: each whole body encoded for each recipient."""
    html = mail.html.encode("utf-8").replace(b"\n", b"\r\n")
    encoded = binascii.b2a_base64(html, newline=False)
    lines = [encoded[i:i + 76] for i in range(0, len(encoded), 76)]
    text = binascii.b2a_qp(mail.text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return len(b"\r\n".join(lines)) + len(text)


def bench_fast_path(folder: Path, count: int, repeat: int) -> None:
    from postbode.content import load_newsletter

    settings = make_project(folder, count)
    newsletter = load_newsletter(folder / NEWSLETTER)
    people = readers(count)
    start = time.perf_counter()
    variants = campaign.prepare_variants(settings, folder / NEWSLETTER,
                                         sorted({(r.locale, None) for r in people}))
    prepare_s = time.perf_counter() - start
    naive = rates_over(lambda i: naive_message(settings, newsletter, people[i % count]), 30, 3.0)

    def build_all() -> float:
        start = time.perf_counter()
        for r in people:
            message.build(variants[(r.locale, None)], r, "bench", settings).as_bytes()
        return count / (time.perf_counter() - start)

    built = repeated(build_all, repeat)
    mails = [message.build(variants[(r.locale, None)], r, "bench", settings) for r in people]

    def encode(kind: str) -> float:
        fresh = [message.build(variants[(m.recipient.locale, None)], m.recipient, "bench", settings)
                 for m in mails]
        start = time.perf_counter()
        for m in fresh:
            m.as_bytes() if kind == "ours" else whole_body_bytes(m)
        return count / (time.perf_counter() - start)

    ours, whole = repeated(lambda: encode("ours"), repeat), repeated(lambda: encode("whole"), repeat)
    size = sum(len(m.as_bytes()) for m in mails) / count / 1024
    ratio = statistics.median(built) / statistics.median(naive)
    print(f"1. fast path ({count} recipients, {len(variants)} variants, {size:.0f} KB a message)")
    print(f"   naive (render + inline + EmailMessage each): {summary(naive)}")
    print(f"   render + inline once per variant (cold):     {prepare_s:8.2f} s")
    print(f"   message.build + as_bytes per recipient:      {summary(built)} = {ratio:.0f}x naive "
          "(target >= 50x, >= 3000 msg/s)")
    print(f"   as_bytes, bodies encoded once per variant:   {summary(ours)}")
    print(f"   each whole body encoded per recipient:       {summary(whole)} "
          f"(as_bytes = {statistics.median(ours) / statistics.median(whole):.1f}x)")


# ---------------------------------------------------------------- 2. outbox vs plain files

def plain_files(folder: Path, named: list[tuple[str, bytes]]) -> float:
    """The baseline: create each file with its bytes, nothing else."""
    folder.mkdir()
    start = time.perf_counter()
    for name, data in named:
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    return len(named) / (time.perf_counter() - start)


def outbox_files(folder: Path, mails: list[message.OutgoingMessage]) -> float:
    transport = OutboxTransport(folder)
    transport.campaign = "bench"
    start = time.perf_counter()
    with transport:
        for i in range(0, len(mails), transport.max_batch):
            transport.send_batch(mails[i:i + transport.max_batch])
    return len(mails) / (time.perf_counter() - start)


def bench_outbox(folder: Path, count: int, repeat: int) -> None:
    runs = CampaignRuns(folder / "project", count)
    variants = campaign.prepare_variants(runs.settings, runs.folder / NEWSLETTER,
                                         [(loc, None) for loc in LOCALES])
    mails = [message.build(variants[(r.locale, None)], r, "bench", runs.settings) for r in readers(count)]
    named = [(file_name(m.message_id), m.as_bytes()) for m in mails]
    plain: list[float] = []
    ours: list[float] = []
    for turn in range(repeat + 1):                   # the first turn is a warm-up
        for kind in (("plain", "ours") if turn % 2 else ("ours", "plain")):
            target = folder / f"{kind}-{turn}"
            rate = plain_files(target, named) if kind == "plain" else outbox_files(target, mails)
            shutil.rmtree(target)
            if turn:
                (plain if kind == "plain" else ours).append(rate)
    whole: dict[int, list[float]] = {1: [], 2: []}
    for turn in range(repeat):
        for workers in (1, 2) if turn % 2 == 0 else (2, 1):
            target = folder / f"campaign-{turn}-{workers}"
            whole[workers].append(runs.run(f"outbox://{target}", workers))
            shutil.rmtree(target)
    print(f"2. outbox, {count} messages")
    print(f"   plain file creation (os.open, os.write, os.close): {summary(plain, 'files/s')}")
    print(f"   outbox transport, pre-built messages:               {summary(ours, 'files/s')} "
          f"= {statistics.median(ours) / statistics.median(plain):.2f}x plain (target >= 0.6x)")
    for workers, rates in whole.items():
        print(f"   campaign send phase (journal, build), {workers} worker{'s' if workers > 1 else ' '}: "
              f"{summary(rates)} = {statistics.median(rates) / statistics.median(plain):.2f}x plain")


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


# ---------------------------------------------------------------- 4. the "already received" rule

def earlier_issue(settings: Settings, newsletter_id: str, segments: list[str]) -> None:
    """A finished campaign of `newsletter_id` whose rows were sent to the segments' members."""
    from sqlalchemy import update

    from postbode import journal
    from postbode.store.schema import journal as rows

    conn = store.connect(settings)
    try:
        made = journal.create_campaign(conn, newsletter_id, segments, {"x": "0"}, "discard://")
        journal.snapshot(conn, made.id, audience.resolve(conn, segments, settings))
        with store.atomic(conn):
            conn.execute(update(rows).where(rows.c.campaign_id == made.id)
                         .values(state="sent", sent_at=time.time() - 86400))
        journal.set_status(conn, made.id, "finished")
    finally:
        conn.close()


class RuleRuns:
    """Whole campaigns to `everyone`, with and without the rule, on fresh copies of one journal."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder, self.count = folder, count
        self.settings = make_project(folder, count)
        earlier_issue(self.settings, "another-issue", ["everyone"])
        self.pristine = folder / "pristine.sqlite3"
        self._save(self.pristine)
        earlier_issue(self.settings, "2018-07-resultaten", ["dutch_speaking"])
        self.overlap = folder / "overlap.sqlite3"
        self._save(self.overlap)

    def _save(self, target: Path) -> None:
        conn = store.connect(self.settings)
        try:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        shutil.copy2(self.settings.database, target)

    def run(self, rule: bool, start_from: Path | None = None) -> float:
        """Mails sent per second over the whole campaign.run (snapshot, prepare, send)."""
        runner = importlib.import_module("postbode.campaign.run")  # the module, not the function
        database = self.settings.database
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copy2(start_from or self.pristine, database)
        holders = runner._holders
        if not rule:   # the previous rule: no check, nothing counted
            runner._holders = lambda *args: {}
        try:
            start = time.perf_counter()
            outcome = campaign.run(self.settings, self.folder / NEWSLETTER, ["everyone"],
                                   transport="discard://", again=not rule)
            seconds = time.perf_counter() - start
        finally:
            runner._holders = holders
        return outcome.totals["sent"] / seconds


    def snapshot(self, rule: bool) -> float:
        """Recipients written per second by the snapshot phase alone (where the rule works)."""
        from postbode.campaign.session import open_session

        runner = importlib.import_module("postbode.campaign.run")
        database = self.settings.database
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copy2(self.pristine, database)
        holders = runner._holders
        if not rule:
            runner._holders = lambda *args: {}
        try:
            with open_session(self.settings, self.folder / NEWSLETTER, ["everyone"],
                              "discard://") as session:
                made = runner._create(session, runner.fingerprint(
                    session.settings, session.newsletter_path, session.newsletter.id))
                start = time.perf_counter()
                runner._snapshot(session, made, again=not rule)
                return self.count / (time.perf_counter() - start)
        finally:
            runner._holders = holders


def bench_rule(scratch: Path | None, count: int, repeat: int, whole: bool) -> None:
    transports.SCHEMES["discard"] = "__main__"
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        runs = RuleRuns(Path(folder), count)
        phase = _alternating(runs.snapshot, max(3, repeat))
        rates = _alternating(runs.run, repeat) if whole else {}
        overlap = [runs.run(True, runs.overlap) for _ in range(max(1, repeat // 2))] if whole else []
    print(f"4. once per person per newsletter, {count:,} recipients, the journal holding a row of "
          "another issue for each")
    cost = count / statistics.median(phase["rule"]) - count / statistics.median(phase["previous"])
    print(f"   snapshot, previous rule (no check): {summary(phase['previous'], 'rows/s')}")
    print(f"   snapshot, already-received rule:    {summary(phase['rule'], 'rows/s')} "
          f"(the rule adds {cost:.2f} s)")
    if not whole:
        return
    ratio = statistics.median(rates["rule"]) / statistics.median(rates["previous"])
    seconds = count / statistics.median(rates["previous"])
    print(f"   whole campaigns through discard://, previous rule: {summary(rates['previous'])}")
    print(f"   whole campaigns, already-received rule in place:  {summary(rates['rule'])} = "
          f"{ratio:.2f}x (target >= 0.90); the snapshot's extra {cost:.2f} s is "
          f"{cost / seconds:.1%} of a {seconds:.0f} s campaign")
    print(f"   rule, 40% already had this issue: {summary(overlap)} (mails sent per second; "
          "those 40% are left out)")


def _alternating(measure: Callable[[bool], float], repeat: int) -> dict[str, list[float]]:
    """measure(rule) for the rule and the previous rule in turn, after a warm-up."""
    rates: dict[str, list[float]] = {"rule": [], "previous": []}
    measure(True)
    for turn in range(repeat):
        for kind in ("rule", "previous") if turn % 2 == 0 else ("previous", "rule"):
            rates[kind].append(measure(kind == "rule"))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--outbox", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--on-disk", action="store_true")
    parser.add_argument("--discard-sizes", default="10000,100000,1000000")
    parser.add_argument("--once", type=int, default=100000,
                        help="recipients of the campaigns that measure the already-received rule")
    parser.add_argument("--once-snapshot-only", action="store_true",
                        help="measure the rule on the snapshot phase alone (minutes, not an hour)")
    parser.add_argument("--only", default="fast,outbox,memory,once",
                        help="which parts to run, e.g. --only outbox; --only postgres runs "
                             "benchmarks/bench_postgres.py's comparison of the state databases")
    parser.add_argument("--pg-recipients", type=int, default=20000)
    parser.add_argument("--pg-url", help="with --only postgres: an existing server to work on")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), args.memory_child[2])
        return
    parts = set(args.only.split(","))
    scratch = scratch_root(args.on_disk)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, temporary folders on "
          f"{scratch or 'the disk (' + tempfile.gettempdir() + ')'}")
    if "fast" in parts:
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            bench_fast_path(Path(folder), args.recipients, args.repeat)
    if "outbox" in parts:
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            bench_outbox(Path(folder), args.outbox, args.repeat)
    if "memory" in parts:
        if args.sizes:
            bench_memory(scratch, [int(s) for s in args.sizes.split(",")])
        if args.discard_sizes:
            bench_memory(scratch, [int(s) for s in args.discard_sizes.split(",")], "discard://")
    if "once" in parts:
        bench_rule(scratch, args.once, args.repeat, not args.once_snapshot_only)
    if "postgres" in parts:
        from bench_postgres import bench_postgres

        bench_postgres(scratch, args.pg_recipients, args.repeat, args.pg_url)


if __name__ == "__main__":
    main()
