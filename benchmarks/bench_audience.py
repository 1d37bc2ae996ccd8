"""Audience benchmark: CSV import speed and streaming resolution of a million subscribers.

    .venv/bin/python benchmarks/bench_audience.py [--import-rows 100000] [--subscribers 1000000]

Needs only what `./scripts/demo.sh` installs into .venv (no test extras).

Prints figures and ratios against baselines measured in the same run:
- import: postbode's import (sniffing, decoding, address validation, merge, one
  transaction) against a bare csv.reader + executemany insert of the same file;
- resolution: `audience.resolve` into a segment against one cursor over the same
  table with the same consent and suppression filter that builds the same
  Recipient objects, with the peak RSS of the resolving process (target: below 300 MB).
Everything is generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from email_validator import validate_email  # noqa: E402

from postbode import audience  # noqa: E402
from postbode.audience import Recipient  # noqa: E402
from postbode.config import Settings  # noqa: E402
from postbode.store import connect  # noqa: E402

LOCALES = ("nl", "nl-BE", "en", "de", "ar")
SEGMENTS = """\
lists:
  donors: {}
  subscribers: {}
fields:
  donor_tier: text
segments:
  donors:
    lists: [donors]
    view: donors
  major_donors:
    lists: [donors]
    where: {donor_tier: major}
    formality: formal
    view: donors
  everyone:
    lists: "*"
"""


def make_settings(folder: Path) -> Settings:
    (folder / "segments.yaml").write_text(SEGMENTS, encoding="utf-8")
    return Settings(root=folder, locales=("nl", "en", "de", "ar"), default_locale="nl",
                    subscribers_dir=folder, segments_file=folder / "segments.yaml",
                    database=folder / "postbode.sqlite3")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["E-mailadres", "Voornaam", "Achternaam", "Taal", "Aanhef", "Donor tier", "Tags"])
        for i in range(rows):
            writer.writerow([f"donateur.{i}@example.org", f"Voornaam{i}", f"Achternaam{i}", LOCALES[i % 5],
                             "u" if i % 3 else "je", "major" if i % 10 == 0 else "regular", f"t{i % 7}"])


def baseline_import(path: Path, db: Path) -> float:
    """Seconds for a bare csv.reader + executemany into one table, one transaction."""
    start = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE people (email TEXT UNIQUE, first TEXT, last TEXT, locale TEXT,"
                 " formality TEXT, tier TEXT, tags TEXT)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        next(reader)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?)", reader)
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def baseline_import_validated(path: Path, db: Path) -> float:
    """The bare baseline plus email-validator on every address (the floor for a validating import)."""
    start = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE people (email TEXT UNIQUE, first TEXT, last TEXT, locale TEXT,"
                 " formality TEXT, tier TEXT, tags TEXT)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        next(reader)
        rows = ([validate_email(r[0], check_deliverability=False).normalized, *r[1:]] for r in reader)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def bench_import(folder: Path, rows: int) -> None:
    settings = make_settings(folder)
    path = folder / "donors.csv"
    write_csv(path, rows)
    base = baseline_import(path, folder / "baseline.sqlite3")
    validated = baseline_import_validated(path, folder / "validated.sqlite3")
    conn = connect(folder / "import.sqlite3")
    start = time.perf_counter()
    summary = audience.import_csv(conn, path, "donors", settings)
    ours = time.perf_counter() - start
    assert summary.new == rows, summary
    print(f"import {rows:,} rows")
    print(f"  baseline csv.reader + executemany:     {rows / base:12,.0f} rows/s ({base:.2f} s)")
    print(f"  same + email-validator per address:    {rows / validated:12,.0f} rows/s ({validated:.2f} s)")
    print(f"  postbode subscribers import:           {rows / ours:12,.0f} rows/s ({ours:.2f} s)")
    print(f"  ratio postbode / bare baseline:        {base / ours:12.2f}")
    print(f"  ratio postbode / validating baseline:  {validated / ours:12.2f}")
    print(f"  peak RSS of this process so far:       {peak_rss_mb():9.0f} MB")


def fill(db: Path, count: int) -> None:
    """A million subscribers straight into the schema (the import path is measured above)."""
    connect(db).close()  # the schema, as postbode makes it
    conn = sqlite3.connect(db, isolation_level=None)
    now = audience.now()

    def people():
        for i in range(1, count + 1):
            key = f"lid.{i}@example.org"
            consent = "unsubscribed" if i % 50 == 0 else "subscribed"
            yield (i, key, key, audience.email_hash(key), f"Lid {i}", None, LOCALES[i % 5].replace("-", "_"),
                   json.dumps({"donor_tier": "major" if i % 10 == 1 else "regular"}), "[]",
                   "bench", now, consent, now, "bench")

    conn.execute("BEGIN")
    conn.execute("INSERT INTO lists VALUES ('donors', ?), ('subscribers', ?)", (now, now))
    conn.executemany("INSERT INTO subscribers(id, email, email_key, email_hash, name, formality, locale,"
                     " attributes, tags, source, created, consent, consent_at, consent_source)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", people())
    conn.executemany("INSERT INTO memberships VALUES (?, ?, ?, 'bench')",
                     ((i, "donors" if i % 2 else "subscribers", now) for i in range(1, count + 1)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would count the parent's from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


BASELINE_SQL = (
    "SELECT s.id, s.email, s.name, s.locale, s.formality FROM subscribers s"
    " WHERE s.consent = 'subscribed'"
    " AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email_hash = s.email_hash)"
    " AND EXISTS (SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id)"
)


def baseline_resolve(conn):
    """The floor for `everyone`: one cursor, the same consent and suppression filter, and
    a Recipient built per row, without batching or the segment rules' SQL."""
    for row in conn.exec_driver_sql(BASELINE_SQL):
        yield Recipient(row[0], row[1], row[2], row[3], row[4] or "formal", None, "everyone")


def resolve_child(folder: str, segment: str, baseline: bool) -> None:
    """Run in a fresh process so its peak RSS is the resolution's own."""
    settings = make_settings(Path(folder))
    conn = connect(settings)
    start = time.perf_counter()
    if baseline:
        n = sum(1 for _ in baseline_resolve(conn))
    else:
        n = sum(1 for _ in audience.resolve(conn, [segment], settings))
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"n": n, "seconds": seconds, "peak_mb": peak_mb}))


def run_child(folder: Path, segment: str, baseline: bool = False) -> dict:
    args = [sys.executable, __file__, "--child", str(folder), "--segment", segment]
    out = subprocess.run(args + (["--baseline"] if baseline else []), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_resolve(folder: Path, count: int) -> None:
    settings = make_settings(folder)
    start = time.perf_counter()
    fill(settings.database, count)
    print(f"resolve {count:,} subscribers (filled in {time.perf_counter() - start:.1f} s)")
    base = run_child(folder, "everyone", baseline=True)
    print(f"  baseline: one cursor, same consent filter, a Recipient per row: "
          f"{base['n']:,} recipients, {base['n'] / base['seconds']:12,.0f} rows/s, "
          f"peak RSS {base['peak_mb']:.0f} MB")
    for segment in ("everyone", "major_donors"):
        got = run_child(folder, segment)
        rate = got["n"] / got["seconds"]
        print(f"  resolve {segment:<13} {got['n']:>9,} recipients: {rate:12,.0f} recipients/s "
              f"({got['seconds']:.2f} s), peak RSS {got['peak_mb']:.0f} MB "
              f"({'below' if got['peak_mb'] < 300 else 'ABOVE'} the 300 MB target)")
        print(f"    ratio to baseline (time per row): {(got['seconds'] / got['n']) / (base['seconds'] / base['n']):.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--child")
    parser.add_argument("--segment", default="everyone")
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    if args.child:
        resolve_child(args.child, args.segment, args.baseline)
        return
    with tempfile.TemporaryDirectory(prefix="postbode-bench-") as tmp:
        (Path(tmp) / "import").mkdir()
        (Path(tmp) / "resolve").mkdir()
        bench_import(Path(tmp) / "import", args.import_rows)
        bench_resolve(Path(tmp) / "resolve", args.subscribers)


if __name__ == "__main__":
    main()
