"""The benchmarks: they run on what `./scripts/demo.sh` installs, and their SMTP sink is a real one."""
from __future__ import annotations

import ast
import contextlib
import json
import re
import socket
import subprocess
import sys
import tomllib

import pytest

from postbode.transports import Status, open_transport

from conftest import REPO

# Distributions whose import name is not their name with "-" as "_".
IMPORT_NAMES = {"pyyaml": "yaml", "markdown-it-py": "markdown_it"}


def runtime_imports() -> set[str]:
    """Import names of what `pip install -e .` brings: pyproject's dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[~=<>!\[; ]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]}
    return {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in names}


def test_benchmarks_import_nothing_beyond_the_runtime_dependencies():
    allowed = runtime_imports() | {"postbode"}
    assert {"premailer", "yaml", "email_validator"} <= allowed
    scripts = sorted((REPO / "benchmarks").glob("*.py"))
    siblings = {path.stem for path in scripts}
    assert {"bench_send", "bench_smtp", "smtp_sink"} <= siblings
    for path in scripts:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in allowed | siblings, \
                    f"{path.name} imports {name}, which ./scripts/demo.sh does not install"


SINK_OFFERS = {"pipelining": [], "no-pipelining": ["--no-pipelining"], "chunking": ["--chunking"]}


@contextlib.contextmanager
def _running_sink(offers: str):
    command = [sys.executable, str(REPO / "benchmarks" / "smtp_sink.py"), *SINK_OFFERS[offers]]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().split()[1])
        yield process, f"smtp://127.0.0.1:{port}?tls=none", offers
    finally:
        process.stdin.close()
        process.wait(timeout=30)


@pytest.fixture(params=list(SINK_OFFERS))
def sink(request):
    with _running_sink(request.param) as running:
        yield running


def _mark(process) -> dict:
    process.stdin.write("mark\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def test_the_benchmark_sink_takes_mail_with_and_without_pipelining(sink, settings, outgoing):
    process, url, offers = sink
    messages = [outgoing(f"lezer{n}@example.org", n, text=".dot\n" * n) for n in range(40)]
    _mark(process)
    with open_transport(url, settings, env={}) as transport:
        assert transport._smtp.has_extn("pipelining") is (offers != "no-pipelining")
        assert transport._smtp.has_extn("chunking") is (offers == "chunking")
        results = transport.send_batch(messages)
    used = _mark(process)
    assert [r.status for r in results] == [Status.SENT] * 40
    assert used["mails"] == 40
    assert 0 <= used["cpu"] and used["wall"] > 0


def _replies(reader, count: int) -> list[bytes]:
    codes = []
    for _ in range(count):
        line = reader.readline()
        while line[3:4] == b"-":
            line = reader.readline()
        codes.append(line[:3])
    return codes


def test_the_sink_finds_each_end_of_data_however_the_bytes_arrive(sink):
    """Empty mail, dot-stuffed lines, the end mark split byte by byte, a line longer than its buffer."""
    process, url, _offers = sink
    port = int(url.split(":")[2].split("?")[0])
    envelope = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    _mark(process)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        reader = conn.makefile("rb")
        assert _replies(reader, 1) == [b"220"]
        conn.sendall(b"EHLO test\r\n")
        _replies(reader, 1)
        conn.sendall(envelope)
        assert _replies(reader, 3) == [b"250", b"250", b"354"]
        conn.sendall(b".\r\n")                                    # an empty message
        assert _replies(reader, 1) == [b"250"]
        conn.sendall(envelope)
        _replies(reader, 3)
        for byte in b"Subject: x\r\n\r\n..\r\n.. not the end\r\n.\r\n":
            conn.sendall(bytes([byte]))                           # one byte a write
        assert _replies(reader, 1) == [b"250"]
        conn.sendall(b"NOOP " + b"x" * 600_000 + b"\r\n")        # longer than the read buffer
        assert _replies(reader, 1) == [b"250"]
        conn.sendall(envelope)
        _replies(reader, 3)
        conn.sendall(b"body\r\n" * 50_000 + b".\r\nQUIT\r\n")     # mail and QUIT in one write
        assert _replies(reader, 2) == [b"250", b"221"]
    assert _mark(process)["mails"] == 3


def test_the_sink_takes_bdat_chunks_however_the_bytes_arrive():
    """BDAT (RFC 3030) with the chunk in the same write, byte by byte, in two chunks, empty."""
    envelope = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
    with _running_sink("chunking") as (process, url, _offers):
        port = int(url.split(":")[2].split("?")[0])
        _mark(process)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            reader = conn.makefile("rb")
            _replies(reader, 1)
            conn.sendall(b"EHLO test\r\n")
            _replies(reader, 1)
            conn.sendall(envelope + b"BDAT 7 LAST\r\n\r\n.\r\nab")   # dots mean nothing in a chunk
            assert _replies(reader, 3) == [b"250", b"250", b"250"]
            conn.sendall(envelope + b"BDAT 9\r\n")
            for byte in b"Subject: ":                                 # one byte a write
                conn.sendall(bytes([byte]))
            conn.sendall(b"BDAT 5 LAST\r\nx\r\n\r\n")
            assert _replies(reader, 4) == [b"250", b"250", b"250", b"250"]
            conn.sendall(b"MAIL FROM:<a@example.org>\r\nBDAT 0 LAST\r\nBDAT x\r\nQUIT\r\n")
            assert _replies(reader, 4) == [b"250", b"250", b"501", b"221"]
        assert _mark(process)["mails"] == 3
