"""CLI start-up: wall time of postbode commands against `python -c pass`, in turns.

    .venv/bin/python benchmarks/bench_startup.py [--repeat 7]

Needs only what `./scripts/demo.sh` installs into .venv (no test extras). Each
command runs in a fresh interpreter in a copy of the sample project; the runs of
all commands take turns, and the median and range are printed with the ratio to
the interpreter starting and doing nothing. Target: `--help` and
`subscribers list --count` under 0.2 s. A count runs the SQL the last count of the
same segments kept (postbode.counting) without importing SQLAlchemy; the first count,
or one after anything it depends on changed, counts in full, so that is timed too
(the kept SQL removed before each run), with importing SQLAlchemy alone beside it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PARTS = ("postbode.toml", "newsletters", "templates", "locales", "subscribers")
NEWSLETTER = "newsletters/2018-07-resultaten.yaml"
SECRET = "benchmark-signing-key-not-secret"
COUNT = "postbode subscribers list --count"
FIRST_COUNT = "postbode subscribers list --count, first"
DATABASE = (FIRST_COUNT,)
KEPT_SQL = "state/count-cache.json"


def commands(project: Path) -> dict[str, list[str]]:
    send = [sys.executable, str(ROOT / "send.py"), "--config", str(project / "postbode.toml")]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import sqlalchemy'": [sys.executable, "-c", "import sqlalchemy"],
        "postbode --help": send + ["--help"],
        "postbode send --help": send + ["send", "--help"],
        COUNT: send + ["subscribers", "list", "--segment", "everyone", "--count"],
        FIRST_COUNT: send + ["subscribers", "list", "--segment", "everyone", "--count"],
        "postbode check": send + ["check", str(project / NEWSLETTER)],
    }


def timed(command: list[str], cwd: Path) -> float:
    env = dict(os.environ, POSTBODE_SECRET_KEY=SECRET)
    env.pop("POSTBODE_DB", None)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for part in PROJECT_PARTS:
            source = ROOT / part
            copy = shutil.copytree if source.is_dir() else shutil.copy2
            copy(source, project / part)
        runs = commands(project)
        subprocess.run(runs[COUNT], cwd=project, capture_output=True,
                       env=dict(os.environ, POSTBODE_SECRET_KEY=SECRET))   # makes the database
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat + 1):                          # the first turn warms caches
            for name, command in runs.items():
                if name == FIRST_COUNT:
                    (project / KEPT_SQL).unlink()
                times[name].append(timed(command, project))
        base = statistics.median(times["python -c pass"][1:])
        floor = statistics.median(times["python -c 'import sqlalchemy'"][1:])
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, "
          f"{args.repeat} runs each, in turns")
    for name, seconds in times.items():
        seconds = seconds[1:]
        median = statistics.median(seconds)
        print(f"  {name:<41} {median:6.3f} s (range {min(seconds):.3f}-{max(seconds):.3f}) "
              f"= {median / base:5.1f}x python -c pass"
              + (f", {median - floor:+.3f} s over importing SQLAlchemy" if name in DATABASE else ""))


if __name__ == "__main__":
    main()
