"""Shared fixtures: a temporary project, settings, the CLI runner, and real servers."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from postbode.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SAMPLE = "newsletters/2018-07-resultaten.yaml"
PROJECT_PARTS = ("postbode.toml", "newsletters", "templates", "locales", "subscribers", "babel.cfg")


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's own files in a temporary folder, which is also the cwd."""
    root = tmp_path / "project"
    root.mkdir()
    for part in PROJECT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, root / part, ignore=shutil.ignore_patterns("*.mo"))
        elif src.is_file():
            shutil.copy2(src, root / part)
    for var in ("POSTBODE_TRANSPORT", "POSTBODE_BASE_URL", "POSTBODE_DB", "POSTBODE_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project / "postbode.toml", env={})


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(project: Path, runner: CliRunner):
    """Run a postbode command in the temporary project: invoke("build", SAMPLE)."""
    from postbode.cli import cli

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(cli, ["--config", str(project / "postbode.toml"), *args],
                             input=input, env=env, catch_exceptions=False)

    return run


# --- Headless Chromium (rendered mails, web pages) ----------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run (playwright sync API); open pages with browser.new_page()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# ---------------------------------------------------------------------------
# Mail servers for the transport and campaign tests: a real aiosmtpd on 127.0.0.1
# with STARTTLS + AUTH (`smtp_server`) or implicit TLS (`smtps_server`), a self-signed
# certificate made for the test session, and fault injection in its handler.
# Providers are tested against pytest-httpserver's `httpserver` fixture.
# ---------------------------------------------------------------------------
import datetime as _dt
import email.policy as _email_policy
import ipaddress as _ipaddress
import random as _random
import socket as _socket
import ssl as _ssl
import threading as _threading
from dataclasses import dataclass as _dataclass, field as _field
from email.message import EmailMessage as _EmailMessage
from email.parser import BytesParser as _BytesParser

SMTP_USER = "mailer"
SMTP_PASSWORD = "test-password-not-secret"


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """(cert.pem, key.pem): a self-signed certificate for localhost and 127.0.0.1, also used as CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "postbode test server")])
    now = _dt.datetime.now(_dt.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(_ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@_dataclass
class SmtpFaults:
    """What the test SMTP server does wrong, on purpose."""

    random_451_rate: float = 0.0          # share of RCPT commands answered 451 (seeded RNG)
    seed: int = 5
    reject: set[str] = _field(default_factory=set)               # 550 5.1.1 at RCPT
    drop_during_data: set[str] = _field(default_factory=set)     # connection closed after the data

    def __post_init__(self) -> None:
        self.rng = _random.Random(self.seed)


@_dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: _EmailMessage
    raw: bytes


class RecordingHandler:
    """An aiosmtpd handler that keeps every accepted message and injects the configured faults."""

    def __init__(self) -> None:
        self.faults = SmtpFaults()
        self.received: list[ReceivedMail] = []
        self.answers: list[tuple[str, str]] = []    # (address, reply) for every RCPT
        self.lock = _threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        faults = self.faults
        if address in faults.reject:
            reply = "550 5.1.1 No such user here"
        elif faults.random_451_rate and faults.rng.random() < faults.random_451_rate:
            reply = "451 4.3.0 Try again later"
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 OK"
        with self.lock:
            self.answers.append((address, reply))
        return reply

    async def handle_DATA(self, server, session, envelope):
        if set(envelope.rcpt_tos) & self.faults.drop_during_data:
            server.transport.close()
            return "421 4.4.2 Connection dropped on purpose"
        raw = envelope.original_content or envelope.content
        parsed = _BytesParser(policy=_email_policy.default).parsebytes(raw)
        with self.lock:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed, raw))
        return "250 2.0.0 Ok: queued as Q%06d" % len(self.received)


@_dataclass
class SmtpTestServer:
    """A running test server: where it listens, what it received, how to make it fail."""

    host: str
    port: int
    scheme: str
    cafile: Path
    handler: RecordingHandler
    user: str = SMTP_USER
    password: str = SMTP_PASSWORD

    @property
    def url(self) -> str:
        """The transport URL (password not in it: see `env`)."""
        tls = "&tls=starttls" if self.scheme == "smtp" else ""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}?cafile={self.cafile}{tls}"

    @property
    def env(self) -> dict[str, str]:
        return {"POSTBODE_SMTP_PASSWORD": self.password}

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received

    @property
    def faults(self) -> SmtpFaults:
        return self.handler.faults


def _free_port() -> int:
    with _socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


def _start_smtp(tls_certificate, implicit: bool):
    from aiosmtpd.controller import Controller

    cert, key = tls_certificate
    context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    common = dict(hostname="127.0.0.1", port=_free_port(), authenticator=_authenticator,
                  auth_required=True, enable_SMTPUTF8=True, ready_timeout=10)
    if implicit:
        # aiosmtpd only counts STARTTLS as TLS for AUTH; here the whole connection is TLS
        # (its warning about this is filtered in pyproject.toml)
        controller = Controller(handler, ssl_context=context, auth_require_tls=False, **common)
    else:
        controller = Controller(handler, tls_context=context, require_starttls=True, **common)
    controller.start()
    server = SmtpTestServer("127.0.0.1", common["port"], "smtps" if implicit else "smtp", cert, handler)
    return controller, server


@pytest.fixture
def smtp_server(tls_certificate):
    """aiosmtpd with STARTTLS (required) and AUTH LOGIN/PLAIN; `.received`, `.faults`, `.url`, `.env`."""
    controller, server = _start_smtp(tls_certificate, implicit=False)
    yield server
    controller.stop()


@pytest.fixture
def smtps_server(tls_certificate):
    """The same server speaking implicit TLS (as on port 465)."""
    controller, server = _start_smtp(tls_certificate, implicit=True)
    yield server
    controller.stop()


@pytest.fixture
def outgoing():
    """Build an OutgoingMessage with its bytes ready: outgoing("a@example.org", n=1, **fields)."""
    from postbode.audience import Recipient
    from postbode.message import OutgoingMessage

    class Prebuilt(OutgoingMessage):
        def as_bytes(self) -> bytes:
            return self._bytes

    def build(email: str, n: int = 1, *, subject: str = "Resultaten 2018", variant=None,
              values: dict | None = None, extra_headers: list | None = None,
              html: str | None = None, text: str | None = None) -> OutgoingMessage:
        message_id = f"<c1.{n}.{email.replace('@', '.')}@newsletter.example.org>"
        unsubscribe = f"https://newsletter.example.org/u/{n}"
        headers = [
            ("From", "Coalitie <newsletter@example.org>"),
            ("To", email),
            ("Subject", subject),
            ("Message-ID", message_id),
            ("List-Unsubscribe", f"<{unsubscribe}>, <mailto:unsubscribe@example.org?subject={n}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("List-Id", "Nieuwsbrief <newsletter.example.org>"),
            *(extra_headers or []),
        ]
        html = html if html is not None else f"<p>Beste lezer {n}, <a href=\"{unsubscribe}\">afmelden</a></p>"
        text = text if text is not None else f"Beste lezer {n}\nAfmelden: {unsubscribe}\n"
        mail = _EmailMessage(policy=_email_policy.SMTP if email.isascii() else _email_policy.SMTPUTF8)
        for name, value in headers:
            mail[name] = value
        mail.set_content(text)
        mail.add_alternative(html, subtype="html")
        recipient = Recipient(n, email, None, "nl", "informal", None, "everyone")
        return Prebuilt(recipient=recipient, message_id=message_id, mail_from="bounces@example.org",
                        rcpt_to=email, subject=subject, headers=headers, html=html, text=text,
                        variant=variant, values=values or {}, _bytes=mail.as_bytes())

    return build


# ---------------------------------------------------------------- state database (audience)


@pytest.fixture
def db(settings: Settings):
    """The project's state database: a real SQLite file in tmp_path, migrations applied.

    It is the file the CLI uses in the same test (settings.database), so commands and
    library calls see the same data.
    """
    from postbode.db import connect

    conn = connect(settings.database)
    yield conn
    conn.close()


# ---------------------------------------------------------------------------
# Web app (postbode/web): the Flask app on the temporary project (its own SQLite
# file under state/), with a signing key, and its test client.
# ---------------------------------------------------------------------------
WEB_SECRET_KEY = "web-test-signing-key-not-secret"


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.with_overrides(secret_key=WEB_SECRET_KEY, base_url="http://127.0.0.1:5000")


@pytest.fixture
def app(web_settings: Settings):
    from postbode.web import create_app

    return create_app(web_settings, {"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


# ---------------------------------------------------------------------------
# Campaign tests: an audience of N made-up recipients imported through the
# audience stage into the project's real SQLite file, and send-ready settings.
# ---------------------------------------------------------------------------
from dataclasses import dataclass as _reader_dataclass

TEST_SECRET_KEY = "test-signing-key-not-secret"
AUDIENCE_LOCALES = ("nl", "en", "de", "ar", "nl_BE")


@_reader_dataclass(frozen=True)
class Reader:
    email: str
    name: str
    locale: str
    formality: str


def make_readers(n: int, locales: tuple[str, ...] = AUDIENCE_LOCALES) -> list[Reader]:
    """n recipients r00001@example.org …, locales in turn, formal and informal in turn."""
    return [Reader(f"r{i:05d}@example.org", f"Lezer {i}", locales[i % len(locales)],
                       "formal" if i % 2 else "informal") for i in range(1, n + 1)]


@pytest.fixture
def send_settings(project: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of the temporary project with a signing key and translations that may fall back."""
    monkeypatch.setenv("POSTBODE_SECRET_KEY", TEST_SECRET_KEY)
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('= "require"', '= "fallback"'),
                    encoding="utf-8")
    return load_settings(toml, env={"POSTBODE_SECRET_KEY": TEST_SECRET_KEY})


@pytest.fixture
def populate(send_settings: Settings, tmp_path: Path):
    """populate(n, locales=…) imports n readers into the list `subscribers`; returns them."""
    from postbode import audience, db

    def run(n: int, locales: tuple[str, ...] = AUDIENCE_LOCALES) -> list[Reader]:
        readers = make_readers(n, locales)
        path = tmp_path / f"readers-{n}.csv"
        lines = ["email;naam;taal;aanhef"]
        lines += [f"{r.email};{r.name};{r.locale};{'u' if r.formality == 'formal' else 'je'}"
                  for r in readers]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        conn = db.connect(send_settings.database)
        try:
            audience.import_csv(conn, path, "subscribers", send_settings)
        finally:
            conn.close()
        return readers

    return run


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver on IPv4 loopback only, on a free port."""
    return ("127.0.0.1", 0)


@pytest.fixture
def newsletter_messages():
    """Real OutgoingMessages from message.prepare/build: newsletter_messages(count, locale="nl")."""
    from postbode import message
    from postbode.audience import Recipient
    from postbode.render import Rendered

    settings = Settings(root=REPO, sender_name="Coalitie", sender_email="nieuwsbrief@example.org",
                        reply_to="info@example.org", base_url="https://nieuwsbrief.example.org",
                        secret_key="transport-test-key-0123456789abcdef",
                        list_id="Nieuwsbrief <nieuwsbrief.example.org>",
                        unsubscribe_mailto="afmelden@example.org")
    html = ('<html lang="{lang}"><body><p>__PB_GREETING__</p><p>R&amp;D – {lang}</p>'
            '<a href="__PB_WEB_URL__">web</a> <a href="__PB_UNSUBSCRIBE_URL__">afmelden</a></body></html>')
    text = "__PB_GREETING__\n\nR&D – {lang}\n\nAfmelden: __PB_UNSUBSCRIBE_URL__\n"
    greetings = {"formal": "Geachte __PB_NAME__,", "informal": "Beste __PB_NAME__,",
                 "formal_anonymous": "Geachte lezer,", "informal_anonymous": "Beste lezer,"}
    variants: dict[str, object] = {}

    def build(count: int, locale: str = "nl", start: int = 0) -> list:
        if locale not in variants:
            rendered = Rendered(newsletter_id="2018-07-resultaten", locale=locale, view=None,
                                subject=f"Resultaten 2018 ({locale})", preheader="",
                                html=html.format(lang=locale), text=text.format(lang=locale),
                                lang=locale, direction="ltr", greetings=greetings)
            variants[locale] = message.prepare(rendered, settings)
        return [message.build(variants[locale],
                              Recipient(n, f"lezer{n:05d}@example.org", f"Lezer & Co {n}", locale,
                                        "informal", None, "everyone"),
                              "campaign-1", settings)
                for n in range(start, start + count)]

    return build
