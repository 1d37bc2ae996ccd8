"""Audience benchmark: streaming CSV import of a 200 MB file, and resolution of a million subscribers.

    .venv/bin/python benchmarks/bench_audience.py [--import-mb 200] [--subscribers 1000000]

Needs only what `./scripts/demo.sh` installs into .venv (no test extras; git for the
previous import's figures).

Prints figures and ratios against baselines measured in the same run:
- import: rows/s and peak RSS of postbode's import (streamed, 1,000-row transactions,
  decoding, address validation, merge) against a validating baseline doing the same
  work (csv.reader, email-validator with the same per-domain cache, the same inserts in
  the same transactions), and against the previous import (the file read whole, one
  transaction) unpacked from git — each in its own process (targets: >= 0.8x the
  baseline, peak RSS below 150 MB);
- resolution: `audience.resolve` into a segment against one cursor over the same
  table with the same consent and suppression filter that builds the same
  Recipient objects, with the peak RSS of the resolving process (target: below 300 MB).
Everything is generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A child measuring the previous import runs against that tree instead of this one.
sys.path.insert(0, os.environ.get("POSTBODE_BENCH_TREE", str(ROOT)))

from email_validator import validate_email  # noqa: E402

from postbode import audience  # noqa: E402
from postbode.audience import Recipient  # noqa: E402
from postbode.audience import addresses as audience_addresses  # noqa: E402
from postbode.config import Settings  # noqa: E402
from postbode.store import connect  # noqa: E402
from postbode.store.engine import SQLITE_PRAGMAS  # noqa: E402

LOCALES = ("nl", "nl-BE", "en", "de", "ar")
# The last commit whose import read the file whole and wrote it in one transaction.
PREVIOUS = "cf1840d"
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


def write_csv(path: Path, megabytes: float) -> int:
    """A donor file of about this size (Dutch headers, amounts in Dutch notation); its row count."""
    limit, rows = int(megabytes * 1024 * 1024), 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["E-mailadres", "Voornaam", "Achternaam", "Taal", "Aanhef", "Donor tier", "Tags"])
        while fh.tell() < limit:
            for i in range(rows, rows + 10_000):
                writer.writerow([f"donateur.{i}@example.org", f"Voornaam{i}", f"Achternaam{i}", LOCALES[i % 5],
                                 "u" if i % 3 else "je", "major" if i % 10 == 0 else "regular", f"t{i % 7}"])
            rows += 10_000
    return rows


SUBSCRIBER_SQL = ("INSERT INTO subscribers(email, email_key, email_hash, name, formality, locale, attributes,"
                  " tags, source, created, consent, consent_at, consent_source, subscriber_key)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'bench', ?, 'subscribed', ?, 'bench', ?)")


def baseline_import_validated(path: Path, db: Path) -> None:
    """The floor for a validating import: csv.reader, email-validator with the same per-domain
    cache, and the same inserts (subscribers with their link keys, memberships, events) in the
    same 1,000-row transactions, with one lookup of known and one of suppressed addresses per
    transaction."""
    connect(db).close()  # the schema, as postbode makes it
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:  # the same durability settings as postbode's connections
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("INSERT INTO lists VALUES ('donors', 'now')")
    formality = {"u": "formal", "je": "informal"}
    with path.open(encoding="utf-8", newline="") as fh, audience_addresses.domains_checked_once():
        reader = csv.reader(fh, delimiter=";")
        next(reader)
        while chunk := list(islice(reader, 1000)):
            now = audience.now()
            rows = []
            for r in chunk:
                shown = validate_email(r[0], check_deliverability=False).normalized
                key = shown.lower()
                rows.append((shown, key, audience.email_hash(key), f"{r[1]} {r[2]}", formality.get(r[4]),
                             r[3].replace("-", "_"), json.dumps({"donor_tier": r[5]}), json.dumps([r[6]]),
                             now, now, secrets.token_urlsafe(16)))   # the key links carry
            marks = ", ".join("?" * len(rows))
            conn.execute("BEGIN IMMEDIATE")
            # the merge's two questions: who is known already, and who is suppressed
            conn.execute(f"SELECT id, consent FROM subscribers WHERE email_key IN ({marks})",
                         [row[1] for row in rows]).fetchall()
            conn.execute(f"SELECT email_hash FROM suppressions WHERE email_hash IN ({marks})",
                         [row[2] for row in rows]).fetchall()
            conn.executemany(SUBSCRIBER_SQL, rows)
            conn.executemany("INSERT INTO memberships SELECT id, 'donors', ?, 'bench' FROM subscribers"
                             " WHERE email_key = ?", [(now, row[1]) for row in rows])
            conn.executemany("INSERT INTO audience_events(at, kind, email_hash, source, detail)"
                             " VALUES (?, 'subscribed', ?, 'bench', '{}')", [(now, row[2]) for row in rows])
            conn.execute("COMMIT")
    conn.close()


def import_child(kind: str, folder: str, csv_path: str) -> None:
    """One import in a fresh process, so its peak RSS is its own; prints JSON."""
    settings = make_settings(Path(folder))
    db = Path(folder) / f"{kind}.sqlite3"
    start = time.perf_counter()
    if kind == "baseline":
        baseline_import_validated(Path(csv_path), db)
        new = None
    else:  # this tree's import, or the previous one (PYTHONPATH points at its copy)
        conn = connect(db)
        new = audience.import_csv(conn, Path(csv_path), "donors", settings).new
        conn.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
                      "peak_mb": peak_rss_mb(), "new": new}))


def previous_tree(folder: Path) -> Path | None:
    """The package as it was before the import streamed (PREVIOUS), unpacked with git; None without git."""
    target = folder / "previous"
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS, "postbode"],
                                 check=True, capture_output=True).stdout
        target.mkdir()
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return target


def run_import(kind: str, folder: Path, path: Path, pythonpath: Path | None = None) -> dict:
    env = dict(os.environ, POSTBODE_BENCH_TREE=str(pythonpath)) if pythonpath else None
    args = [sys.executable, __file__, "--import-child", kind, str(folder), str(path)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


LABELS = {
    "baseline": "validating baseline (csv + email-validator, same cache and inserts)",
    "postbode": "postbode subscribers import (streaming, 1,000-row transactions)",
    "previous": f"previous postbode import ({PREVIOUS[:7]}: file read whole, one transaction)",
}


def bench_import(folder: Path, megabytes: float, kinds: list[str]) -> None:
    make_settings(folder)
    path = folder / "donors.csv"
    rows = write_csv(path, megabytes)
    size = path.stat().st_size / 1024 / 1024
    print(f"import {rows:,} rows, {size:.0f} MB CSV (each import in its own process)")
    results = {}
    for kind in kinds:
        tree = previous_tree(folder) if kind == "previous" else None
        if kind == "previous" and tree is None:
            print("  previous import: not measured (needs git and this repository's history)")
            continue
        results[kind] = got = run_import(kind, folder, path, pythonpath=tree)
        assert got["new"] in (None, rows), got
        print(f"  {LABELS[kind]:<72} {rows / got['seconds']:10,.0f} rows/s ({got['seconds']:6.1f} s wall, "
              f"{got['cpu']:6.1f} s CPU), peak RSS {got['peak_mb']:5.0f} MB")
    if "baseline" in results and "postbode" in results:
        base, ours = results["baseline"], results["postbode"]
        print(f"  ratio postbode / validating baseline: {base['seconds'] / ours['seconds']:.2f} by wall time, "
              f"{base['cpu'] / ours['cpu']:.2f} by CPU time (target >= 0.8)")
    if "postbode" in results:
        peak = results["postbode"]["peak_mb"]
        print(f"  postbode peak RSS {peak:.0f} MB ({'below' if peak < 150 else 'ABOVE'} the 150 MB target)")


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
    parser.add_argument("--import-mb", type=float, default=200, help="size of the CSV file to import")
    parser.add_argument("--imports", default="baseline,postbode,previous",
                        help="which imports to measure, comma-separated (the previous one takes 1 GB at 200 MB)")
    parser.add_argument("--import-child", nargs=3)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--child")
    parser.add_argument("--segment", default="everyone")
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    if args.import_child:
        import_child(*args.import_child)
        return
    if args.child:
        resolve_child(args.child, args.segment, args.baseline)
        return
    with tempfile.TemporaryDirectory(prefix="postbode-bench-") as tmp:
        (Path(tmp) / "import").mkdir()
        (Path(tmp) / "resolve").mkdir()
        bench_import(Path(tmp) / "import", args.import_mb, args.imports.split(","))
        if args.subscribers:
            bench_resolve(Path(tmp) / "resolve", args.subscribers)


if __name__ == "__main__":
    main()
