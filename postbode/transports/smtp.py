"""SMTP: one reused connection (STARTTLS or implicit TLS, AUTH), one outcome per recipient."""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from postbode.errors import TransportError
from postbode.message import OutgoingMessage, PreparedVariant
from postbode.transports import secret
from postbode.transports.base import SendResult, Status, Transport, results_for

if TYPE_CHECKING:
    from postbode.transports import TransportUrl

TLS_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
PASSWORD_VARIABLE = "POSTBODE_SMTP_PASSWORD"
ENHANCED_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
QUEUE_ID = re.compile(r"queued as ([A-Za-z0-9._-]+)", re.IGNORECASE)
_LINE_BREAK = re.compile(r"[\r\n\0]")
# The envelope commands in order, with the replies that let the transaction go on.
ENVELOPE = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))
# Without an enhanced status code, these RCPT replies say the mailbox does not exist.
HARD_BOUNCE_CODES = (550, 551, 553)


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "SmtpTransport":
    """smtp://user@host:587?tls=starttls, smtp://host:2525?tls=none, smtps://user@host:465."""
    options = url.options({"tls": TLS_MODES, "cafile": None, "timeout": None, "helo": None})
    tls = options.get("tls", "starttls")
    if url.scheme == "smtps":
        if options.get("tls", "tls") != "tls":
            raise url.error("smtps:// always uses implicit TLS; leave out ?tls= or use smtp://")
        tls = "tls"
    if not url.host:
        raise url.error("name the SMTP server, e.g. smtp://user@smtp.example.org:587")
    if url.password and not url.user:
        raise url.error("a password needs a user name: smtp://user:password@host")
    cafile = options.get("cafile")
    if cafile and not Path(cafile).is_file():
        raise TransportError(f"{url.shown}: cafile {cafile} does not exist; give the path of a PEM file")
    return SmtpTransport(SmtpServer(
        host=url.host,
        port=url.port or DEFAULT_PORTS[tls],
        tls=tls,
        user=url.user,
        password=secret(url, env, PASSWORD_VARIABLE, "SMTP password") if url.user else None,
        cafile=cafile,
        timeout=url.number("timeout", 30.0),
        helo=options.get("helo") or socket.gethostname(),
        shown=url.shown,
    ))


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect; `shown` is the URL with the password masked."""

    host: str
    port: int
    tls: str
    user: str | None
    password: str | None
    cafile: str | None
    timeout: float
    helo: str
    shown: str


class _Unreachable(Exception):
    """No connection could be made; a transient problem once sending has begun."""


class _Reconnect(Exception):
    """The connection went away (or the server said 421) before the message data was sent."""

    def __init__(self, code: int | None, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


class SmtpTransport(Transport):
    """Sends each message with MAIL, RCPT, DATA over one connection it keeps open.

    Where the server offers PIPELINING (RFC 2920) the three envelope commands go out
    in one write and their replies are read after it: two round trips a message
    (envelope, content) instead of four.
    """

    scheme = "smtp"
    # One message is in flight at a time on a connection; claiming more than that
    # would only add messages of unknown fate after a crash.
    max_batch = 1

    def __init__(self, server: SmtpServer):
        self.server = server
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except _Unreachable as err:
                raise TransportError(
                    f"{self.server.shown}: cannot reach the SMTP server ({err}); "
                    "check the host and port, and that the server is running"
                ) from err

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            try:
                results.append(self._send_one(message))
            except _Unreachable as err:
                text = f"cannot reach the SMTP server ({err}); nothing was sent"
                return results + results_for(messages[index:], Status.RETRY, None, text)
        return results

    # -- one message ---------------------------------------------------------------

    def _send_one(self, message: "OutgoingMessage") -> SendResult:
        """Send one message; a drop before DATA is retried once on a fresh connection."""
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                return self._transaction(self._smtp, message)
            except _Reconnect as lost:
                self._drop()
                if attempt == 2:
                    return SendResult(message.message_id, Status.RETRY, lost.code,
                                      f"connection lost before the message was sent: {lost.text}")
        raise AssertionError("unreachable")

    def _transaction(self, smtp: smtplib.SMTP, message: "OutgoingMessage") -> SendResult:
        data = _wire_bytes(message)
        options = self._mail_options(smtp, message, data)
        if isinstance(options, SendResult):
            return options
        if smtp.has_extn("pipelining"):
            refused = self._envelope_pipelined(smtp, message, options)
        else:
            refused = self._envelope_stepwise(smtp, message, options)
        return refused or self._content(smtp, message, data)

    def _envelope_pipelined(self, smtp: smtplib.SMTP, message: "OutgoingMessage",
                            options: list[str]) -> SendResult | None:
        """RFC 2920: MAIL FROM, RCPT TO and DATA in one write, their three replies read after."""
        params = "".join(" " + option for option in options)
        _write(smtp, f"MAIL FROM:<{_envelope_sender(message)}>{params}\r\nRCPT TO:<{message.rcpt_to}>"
                     "\r\nDATA\r\n".encode("utf-8"))
        replies = [_reply(smtp) for _stage in ENVELOPE]
        for (stage, accepted), (code, reply) in zip(ENVELOPE, replies):
            if code not in accepted:
                if replies[-1][0] == 354:
                    # The server opened DATA for a refused envelope: ending the data would
                    # complete an empty mail, so end the connection instead.
                    self._drop()
                return self._refused(smtp, message, code, reply, stage)
        return None

    def _envelope_stepwise(self, smtp: smtplib.SMTP, message: "OutgoingMessage",
                           options: list[str]) -> SendResult | None:
        """MAIL FROM, RCPT TO and DATA one after the other, for a server without PIPELINING."""
        steps = ((smtp.mail, (_envelope_sender(message), options)), (smtp.rcpt, (message.rcpt_to,)),
                 (smtp.docmd, ("DATA",)))
        for (stage, accepted), (method, args) in zip(ENVELOPE, steps):
            code, reply = _command(method, *args)
            if code not in accepted:
                return self._refused(smtp, message, code, reply, stage)
        return None

    def _content(self, smtp: smtplib.SMTP, message: "OutgoingMessage", data: bytes) -> SendResult:
        """After 354: the dot-stuffed message and its end in one write, then the final reply."""
        try:
            smtp.send(_stuffed(data))
            code, raw = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            self._drop()
            return SendResult(message.message_id, Status.UNKNOWN, None,
                              f"connection lost during DATA ({err}); the message may have been delivered")
        reply = _text(raw)
        if code != 250:
            return self._refused(smtp, message, code, reply, "end of DATA")
        queued = QUEUE_ID.search(reply)
        return SendResult(message.message_id, Status.SENT, code, reply,
                          queued.group(1) if queued else None)

    def _mail_options(self, smtp: smtplib.SMTP, message: "OutgoingMessage",
                      data: bytes) -> list[str] | SendResult:
        """MAIL FROM parameters: SMTPUTF8 for a non-ASCII address, 8BITMIME for 8-bit content."""
        options: list[str] = []
        if _LINE_BREAK.search(message.mail_from + message.rcpt_to):
            return SendResult(message.message_id, Status.REJECTED, None,
                              f"{message.rcpt_to!r}: an address with a line break cannot be sent")
        if not (message.mail_from.isascii() and message.rcpt_to.isascii()):
            if not smtp.has_extn("smtputf8"):
                return SendResult(
                    message.message_id, Status.REJECTED, None,
                    f"{message.rcpt_to} needs SMTPUTF8, which {self.server.host} does not offer; "
                    "send these addresses through a server that supports it",
                )
            options.append("SMTPUTF8")
        if (options or not data.isascii()) and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return options

    def _refused(self, smtp: smtplib.SMTP, message: "OutgoingMessage", code: int, reply: str,
                 stage: str) -> SendResult:
        """A reply other than success: 4xx is worth a retry, 5xx is final."""
        text = f"{stage}: {code} {reply}"
        if code == 421:            # the server is closing this connection
            self._drop()
        elif stage != "end of DATA":
            self._reset(smtp)
        if 500 <= code < 600:
            return SendResult(message.message_id, Status.REJECTED, code, text,
                              hard_bounce=is_hard_bounce(code, reply, stage))
        return SendResult(message.message_id, Status.RETRY, code, text)

    # -- the connection ------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        """A logged-in connection; TransportError for what the operator must fix."""
        server = self.server
        context = ssl.create_default_context(cafile=server.cafile) if server.tls != "none" else None
        smtp: smtplib.SMTP | None = None
        try:
            if server.tls == "tls":
                smtp = smtplib.SMTP_SSL(server.host, server.port, local_hostname=server.helo,
                                        timeout=server.timeout, context=context)
            else:
                smtp = smtplib.SMTP(server.host, server.port, local_hostname=server.helo,
                                    timeout=server.timeout)
            # Every command group and every message goes out in one write: do not let
            # Nagle's algorithm hold back its last segment waiting for an ACK.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if server.tls == "starttls":
                self._starttls(smtp, context)
            if server.user:
                self._login(smtp)
            return smtp
        except TransportError:
            _quietly_close(smtp)
            raise
        except ssl.SSLCertVerificationError as err:
            _quietly_close(smtp)
            raise TransportError(
                f"{server.shown}: the server's certificate cannot be verified ({err.verify_message}); "
                "if it is signed by your own CA, add ?cafile=/path/to/ca.pem"
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            _quietly_close(smtp)
            raise _Unreachable(f"{server.host}:{server.port}: {err}") from err

    def _starttls(self, smtp: smtplib.SMTP, context: ssl.SSLContext | None) -> None:
        if not smtp.has_extn("starttls"):
            raise TransportError(
                f"{self.server.shown}: the server does not offer STARTTLS; use smtps:// if it "
                "expects implicit TLS (port 465), or tls=none only for a relay on this machine"
            )
        smtp.starttls(context=context)
        smtp.ehlo()

    def _login(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.login(self.server.user or "", self.server.password or "")
        except smtplib.SMTPAuthenticationError as err:
            raise TransportError(
                f"{self.server.shown}: login refused ({err.smtp_code} {_text(err.smtp_error)}); "
                f"check the user name and {PASSWORD_VARIABLE}"
            ) from err
        except smtplib.SMTPNotSupportedError as err:
            raise TransportError(
                f"{self.server.shown}: the server offers no login (AUTH) on this connection; "
                "use tls=starttls or smtps://, or leave the user out for a relay that needs none"
            ) from err

    def _reset(self, smtp: smtplib.SMTP) -> None:
        """End a refused transaction; a failing RSET just means a new connection next time."""
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        _quietly_close(smtp)


def is_hard_bounce(code: int, reply: str, stage: str) -> bool:
    """The address does not exist: enhanced status 5.1.x, or 550/551/553 to RCPT without one."""
    enhanced = ENHANCED_STATUS.match(reply)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return stage == "RCPT TO" and code in HARD_BOUNCE_CODES


def _command(method, *args) -> tuple[int, str]:
    """Run MAIL, RCPT or DATA; a lost connection or a 421 means: reconnect and try again."""
    try:
        code, raw = method(*args)
    except (smtplib.SMTPServerDisconnected, OSError) as err:
        raise _Reconnect(None, str(err)) from err
    reply = _text(raw)
    if code == 421:
        raise _Reconnect(code, reply)
    return code, reply


def _write(smtp: smtplib.SMTP, commands: bytes) -> None:
    """Send envelope commands; nothing of the message is out yet, so a failure means reconnect."""
    try:
        smtp.send(commands)
    except (smtplib.SMTPServerDisconnected, OSError) as err:
        raise _Reconnect(None, str(err)) from err


def _reply(smtp: smtplib.SMTP) -> tuple[int, str]:
    """The next reply to an envelope command (see `_command` for 421 and lost connections)."""
    return _command(smtp.getreply)


def _wire_bytes(message: "OutgoingMessage") -> bytes:
    """The message with CRLF line ends: `message.build` assembles them so, others are checked."""
    data = message.as_bytes()
    if type(message) is OutgoingMessage and isinstance(message.variant, PreparedVariant):
        return data
    return _crlf(data)


def _stuffed(data: bytes) -> bytes:
    """RFC 5321 4.5.2: a line that starts with a dot gets one more; then the end-of-data line."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _crlf(data: bytes) -> bytes:
    """SMTP needs CRLF line ends; smtplib sends bytes as they are."""
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return re.sub(rb"\r?\n", b"\r\n", data)


def _quietly_close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass


def _envelope_sender(message: "OutgoingMessage") -> str:
    """The VERP address when [bounces] domain is set (bounces come back to postbode), else From."""
    return message.return_path or message.mail_from
