"""The state database under a campaign: PostgreSQL with 1 and 2 sending processes, next to SQLite with 1.

    .venv/bin/python benchmarks/bench_send.py --only postgres [--pg-recipients 20000] [--repeat 3]
    .venv/bin/python benchmarks/bench_postgres.py [--pg-url postgresql://user@host/db]

Every campaign goes through a transport that builds each message's bytes and discards
them (bench_send's `discard://`), so the database is what is measured. With 2 senders
the campaign is snapshotted first, then two processes send it together, each claiming
rows with SKIP LOCKED; the rate is the campaign's recipients over the time from the
first process's first claim to the last process's end. Without --pg-url a PostgreSQL
server is started from Debian's package (apt-get install postgresql) in a temporary
folder, on 127.0.0.1 and a free port, and removed afterwards.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_send  # noqa: E402
from postbode import campaign, store, transports  # noqa: E402
from postbode.config import load_settings  # noqa: E402

TEMPLATE = "bench_template"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: its own system user runs it then
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def local_server() -> Iterator[str]:
    """A throw-away PostgreSQL server; yields the URL of its `postgres` database."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        sys.exit("PostgreSQL is not installed: sudo apt-get install postgresql (or pass --pg-url)")
    bin_dir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="postbode-bench-pg-"))
    data, port = folder / "data", free_port()
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                              "--auth=trust", "--encoding=UTF8"]), check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"
    subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                              str(data / "log"), "-w", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                                  "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def prepare(settings, folder: Path) -> None:
    """The campaign's snapshot, written before any sender starts."""
    from postbode.campaign.run import open_or_snapshot
    from postbode.campaign.session import open_session

    with open_session(settings, folder / bench_send.NEWSLETTER, ["everyone"], "discard://") as s:
        open_or_snapshot(s, False)


def sender_child(folder: str, database: str) -> None:
    """In a fresh process: send the prepared campaign; print when the send began and ended."""
    transports.SCHEMES["discard"] = "bench_send"
    settings = load_settings(Path(folder) / "postbode.toml",
                             env={"POSTBODE_SECRET_KEY": bench_send.SECRET, "POSTBODE_DB": database})
    marks: list[float] = []
    outcome = campaign.run(settings, Path(folder) / bench_send.NEWSLETTER, ["everyone"],
                           transport="discard://", progress=lambda d, t: marks.append(time.time()))
    print(json.dumps({"first": marks[0] if marks else time.time(), "end": time.time(),
                      "sent": outcome.totals["sent"]}))


def one_run(folder: Path, database: str, senders: int, count: int) -> float:
    """Recipients per second of one campaign sent by `senders` processes."""
    transports.SCHEMES["discard"] = "bench_send"
    settings = load_settings(folder / "postbode.toml",
                             env={"POSTBODE_SECRET_KEY": bench_send.SECRET, "POSTBODE_DB": database})
    prepare(settings, folder)
    children = [subprocess.Popen([sys.executable, __file__, "--sender-child", str(folder), database],
                                 stdout=subprocess.PIPE, text=True) for _ in range(senders)]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=3600)
        if child.returncode != 0:
            raise SystemExit(f"a sender failed (exit {child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, end = min(r["first"] for r in results), max(r["end"] for r in results)
    return count / (end - first)


def bench_postgres(scratch: Path | None, count: int, repeat: int, pg_url: str | None = None) -> None:
    """Campaign rate on SQLite (1 sender) and PostgreSQL (1 and 2 senders), in one run."""
    print(f"4. state database: {count:,}-recipient campaigns through discard:// "
          f"(builds every message, sends none), {repeat} runs each")
    with tempfile.TemporaryDirectory(dir=scratch) as tmp, \
            (_given(pg_url) if pg_url else local_server()) as server:
        folder = Path(tmp) / "project"
        settings = bench_send.make_project(folder, count)          # imports into SQLite
        pristine = folder / "pristine.sqlite3"
        shutil.copy2(settings.database, pristine)
        _admin(server, f"DROP DATABASE IF EXISTS {TEMPLATE}")
        _admin(server, f"CREATE DATABASE {TEMPLATE}")
        _copy_list(settings, _with_database(server, TEMPLATE), folder)
        rates: dict[str, list[float]] = {"sqlite, 1 sender": [], "postgresql, 1 sender": [],
                                         "postgresql, 2 senders": []}
        for i in range(repeat):
            database = str(folder / f"run{i}.sqlite3")
            shutil.copy2(pristine, database)
            rates["sqlite, 1 sender"].append(one_run(folder, database, 1, count))
            for senders in (1, 2):
                name = f"bench_{i}_{senders}"
                _admin(server, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
                rates[f"postgresql, {senders} sender{'s' if senders > 1 else ''}"].append(
                    one_run(folder, _with_database(server, name), senders, count))
                _admin(server, f"DROP DATABASE {name}")
        _admin(server, f"DROP DATABASE {TEMPLATE}")
    base = statistics.median(rates["sqlite, 1 sender"])
    for label, values in rates.items():
        print(f"   {label:<22} {bench_send.summary(values)}  "
              f"({statistics.median(values) / base:.2f}x SQLite with 1)")


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def _copy_list(settings, url: str, folder: Path) -> None:
    """The same imported list in PostgreSQL: imported again from the same CSV."""
    from postbode import audience

    conn = store.connect(url)
    try:
        audience.import_csv(conn, folder / "people.csv", "subscribers",
                            settings.with_overrides(database=url))
    finally:
        conn.close()
    for engine in list(store.engine._engines.values()):
        engine.dispose()   # CREATE DATABASE … TEMPLATE needs the template without connections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-recipients", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", help="an existing PostgreSQL server's database to work from "
                        "(it creates and drops databases there)")
    parser.add_argument("--sender-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender_child:
        sender_child(*args.sender_child)
        return
    bench_postgres(bench_send.scratch_root(False), args.pg_recipients, args.repeat, args.pg_url)


if __name__ == "__main__":
    main()
