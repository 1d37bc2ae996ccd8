"""SMTP: one reused connection (STARTTLS or implicit TLS, AUTH), one outcome per recipient."""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from postbode.errors import TransportError
from postbode.message import dot_stuffed
from postbode.transports import secret
from postbode.transports.base import SendResult, Status, Transport, results_for

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

TLS_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
PASSWORD_VARIABLE = "POSTBODE_SMTP_PASSWORD"
ENHANCED_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
QUEUE_ID = re.compile(r"queued as ([A-Za-z0-9._-]+)", re.IGNORECASE)
_LINE_BREAK = re.compile(r"[\r\n\0]")
# The envelope commands in order, with the replies that let the transaction go on.
ENVELOPE = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))
# The same for a chunked transaction (RFC 3030): the last reply is the message's.
CHUNKED = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("BDAT", (250,)))
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
    (envelope, content) instead of four. Where it also offers CHUNKING (RFC 3030, as
    Postfix, Exim, Gmail and Microsoft 365 do), MAIL, RCPT and one `BDAT <size> LAST`
    with the whole message go out in one write: one round trip, and no dot-stuffing.
    """

    scheme = "smtp"
    # One message is in flight at a time on a connection; claiming more than that
    # would only add messages of unknown fate after a crash.
    max_batch = 1

    def __init__(self, server: SmtpServer):
        self.server = server
        self._smtp: smtplib.SMTP | None = None
        # The next mail's transaction, opened with the last mail's data (RFC 2920: the end
        # of data, then MAIL, RCPT and DATA, in one write): its envelope accepted and DATA
        # answered 354, its content not sent. Only that content may follow. Dropping the
        # connection abandons it and the server delivers nothing; QUIT or RSET now would
        # be read as the mail's content.
        self._opened: "OutgoingMessage | None" = None

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
        if self._opened is not None:
            self._drop()                   # never QUIT inside DATA
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send_batch(self, messages: Sequence["OutgoingMessage"], *,
                   following: "OutgoingMessage | None" = None) -> list[SendResult]:
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            try:
                results.append(self._send_one(message, following=following
                                              if index == len(messages) - 1 else None))
            except _Unreachable as err:
                return results + results_for(messages[index:], Status.RETRY, None, _unreachable(err))
        return results

    @property
    def opens_next(self) -> bool:
        """The connection's server offers PIPELINING but not CHUNKING (which needs no opening)."""
        smtp = self._smtp
        return smtp is not None and bool(smtp.has_extn("pipelining")) and not self.chunks(smtp)

    # -- one message ---------------------------------------------------------------

    def _send_one(self, message: "OutgoingMessage", tries: int = 2, *,
                  following: "OutgoingMessage | None" = None) -> SendResult:
        """Send one message; a drop before DATA is retried once on a fresh connection.

        `following`: open that mail's transaction with this one's data, if the server allows.
        """
        if self._opened is not None and self._opened is not message:
            self._drop()                   # another mail goes first: abandon the opened one
        for attempt in range(1, tries + 1):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                if self._opened is message:
                    self._opened = None    # its envelope went out with the last mail's data
                    return self._content(self._smtp, message, _smtp_data(message), following)
                return self._transaction(self._smtp, message, following)
            except _Reconnect as lost:
                self._drop()
                if attempt == tries:
                    return SendResult(message.message_id, Status.RETRY, lost.code,
                                      f"connection lost before the message was sent: {lost.text}")
        raise AssertionError("unreachable")

    def _transaction(self, smtp: smtplib.SMTP, message: "OutgoingMessage",
                     following: "OutgoingMessage | None" = None) -> SendResult:
        if self.chunks(smtp):
            return self._chunked(smtp, message)
        options = self._mail_options(smtp, message)
        if isinstance(options, SendResult):
            return options
        if smtp.has_extn("pipelining"):
            self._write_envelope(smtp, message, options)
            data = _smtp_data(message)           # made while the server answers the envelope
            refused = self._envelope_replies(smtp, message)
        else:
            refused = self._envelope_stepwise(smtp, message, options)
            data, following = (b"" if refused else _smtp_data(message)), None
        return refused or self._content(smtp, message, data, following)

    def _content(self, smtp: smtplib.SMTP, message: "OutgoingMessage", data: bytes,
                 following: "OutgoingMessage | None") -> SendResult:
        """The message's data (and the next mail's envelope, pipelined after it), its reply."""
        opening = self._opening(smtp, following)
        result = self._write_content(smtp, message, data + opening) or self._content_reply(smtp, message)
        if opening and self._smtp is smtp:
            self._read_opening(smtp, following)
        return result

    def _opening(self, smtp: smtplib.SMTP, following: "OutgoingMessage | None") -> bytes:
        """MAIL FROM, RCPT TO and DATA of the next mail, to go right after this one's data."""
        if following is None or not smtp.has_extn("pipelining"):
            return b""
        options = self._mail_options(smtp, following)
        if isinstance(options, SendResult):
            return b""                     # refused before any command: it goes the usual way
        return _envelope_bytes(following, options)

    def _read_opening(self, smtp: smtplib.SMTP, following: "OutgoingMessage") -> None:
        """The replies to the next mail's envelope: its transaction is open, or set aside.

        A refusal is not its result: the mail goes the usual way when it is sent and
        gets its own answer then (a lost connection or a 421 only means a new one).
        """
        try:
            replies = [_reply(smtp) for _stage in ENVELOPE]
        except _Reconnect:
            self._drop()
            return
        if all(code in accepted for (_stage, accepted), (code, _text) in zip(ENVELOPE, replies)):
            self._opened = following
        elif replies[-1][0] == 354:
            self._drop()                   # DATA open for a refused envelope: end the connection
        else:
            self._reset(smtp)

    @staticmethod
    def chunks(smtp: smtplib.SMTP) -> bool:
        """True when the server offers PIPELINING and CHUNKING: a message is one write."""
        return bool(smtp.has_extn("pipelining") and smtp.has_extn("chunking"))

    def _chunked(self, smtp: smtplib.SMTP, message: "OutgoingMessage") -> SendResult:
        """MAIL FROM, RCPT TO and BDAT LAST with the message in one write, then their replies."""
        options = self._mail_options(smtp, message)
        if isinstance(options, SendResult):
            return options
        self._write_chunk(smtp, message, options, _chunk_data(message))
        return self._chunk_replies(smtp, message)

    def _write_chunk(self, smtp: smtplib.SMTP, message: "OutgoingMessage", options: list[str],
                     data: bytes) -> None:
        """The whole transaction in one write. If the write fails, part of the chunk is
        missing at the server, which then delivers nothing: `_Reconnect`, as before DATA."""
        params = "".join(" " + option for option in options)
        _write(smtp, b"".join((f"MAIL FROM:<{_envelope_sender(message)}>{params}\r\nRCPT TO:"
                               f"<{message.rcpt_to}>\r\nBDAT {len(data)} LAST\r\n".encode("utf-8"),
                               data)))

    def _chunk_replies(self, smtp: smtplib.SMTP, message: "OutgoingMessage") -> SendResult:
        """The replies to MAIL, RCPT and BDAT. The whole message is out: a connection lost
        now leaves its fate unknown; a refused MAIL or RCPT made the server drop the chunk,
        and a 421 means it took nothing."""
        replies: list[tuple[int, str]] = []
        for stage in ("MAIL FROM", "RCPT TO", "BDAT"):
            try:
                code, raw = smtp.getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as err:
                return self._lost_in_data(message, err)
            if code == 421:       # closing, nothing taken: again on a fresh connection
                raise _Reconnect(code, _text(raw))
            replies.append((code, _text(raw)))
        for (stage, accepted), (code, reply) in zip(CHUNKED, replies):
            if code not in accepted:
                return self._refused(smtp, message, code, reply, stage)
        return _queued(message, *replies[-1])

    def pipelines(self) -> bool:
        """True when the open connection's server offers PIPELINING (RFC 2920)."""
        return self._smtp is not None and bool(self._smtp.has_extn("pipelining"))

    @classmethod
    def per_worker(cls, opened: list[Transport]) -> list[Transport]:
        """Connections whose servers all pipeline are driven in step by one worker."""
        if len(opened) > 1 and all(isinstance(t, SmtpTransport) and t.pipelines() for t in opened):
            return [SmtpConnections(opened)]  # type: ignore[arg-type]
        return opened

    def _write_envelope(self, smtp: smtplib.SMTP, message: "OutgoingMessage",
                        options: list[str]) -> None:
        """RFC 2920: MAIL FROM, RCPT TO and DATA in one write; their replies are read after."""
        _write(smtp, _envelope_bytes(message, options))

    def _envelope_replies(self, smtp: smtplib.SMTP, message: "OutgoingMessage") -> SendResult | None:
        """The three replies to a pipelined envelope: None when the data may follow."""
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

    def _write_content(self, smtp: smtplib.SMTP, message: "OutgoingMessage",
                       data: bytes) -> SendResult | None:
        """After 354: the dot-stuffed message and its end in one write (None once written)."""
        try:
            smtp.send(data)
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            return self._lost_in_data(message, err)
        return None

    def _content_reply(self, smtp: smtplib.SMTP, message: "OutgoingMessage") -> SendResult:
        """The server's answer to the message: queued, or refused."""
        try:
            code, raw = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            return self._lost_in_data(message, err)
        reply = _text(raw)
        if code != 250:
            return self._refused(smtp, message, code, reply, "end of DATA")
        return _queued(message, code, reply)

    def _lost_in_data(self, message: "OutgoingMessage", err: Exception) -> SendResult:
        self._drop()
        return SendResult(message.message_id, Status.UNKNOWN, None,
                          f"connection lost during DATA ({err}); the message may have been delivered")

    def _mail_options(self, smtp: smtplib.SMTP, message: "OutgoingMessage") -> list[str] | SendResult:
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
        if (options or message.eight_bit) and smtp.has_extn("8bitmime"):
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
        smtp, self._smtp, self._opened = self._smtp, None, None
        _quietly_close(smtp)


class SmtpConnections(Transport):
    """Several SMTP connections driven in step by one worker, a message on each.

    Every connection's envelope is written before any reply is read, and so is every
    connection's message data, so their round trips overlap without a thread each:
    threads would take turns at the interpreter lock around every socket call, which
    costs more CPU than the sending. A batch holds one message a connection, so a crash
    still leaves at most one row of unknown fate per connection. Only for servers that
    offer PIPELINING (see `SmtpTransport.per_worker`).
    """

    scheme = "smtp"

    def __init__(self, connections: list[SmtpTransport]):
        self.connections = connections
        self.max_batch = len(connections)

    def open(self) -> None:
        for connection in self.connections:
            connection.open()

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        results: list[SendResult] = []
        for start in range(0, len(messages), self.max_batch):
            results += self._in_step(messages[start:start + self.max_batch])
        return results

    def _in_step(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        exchanges = [_Exchange(c, m) for c, m in zip(self.connections, messages)]
        for step in (_Exchange.write_envelope, _Exchange.read_envelope, _Exchange.write_content,
                     _Exchange.read_result):
            for exchange in exchanges:
                if exchange.result is None and not exchange.alone:
                    step(exchange)
        return [exchange.result or exchange.on_its_own() for exchange in exchanges]


class _Exchange:
    """One message on one connection of SmtpConnections, a step at a time.

    `result` stays None while the exchange goes on; `alone` marks a message that
    finishes on its own after the others (its connection was gone, or went away
    before the data, or its server stopped offering PIPELINING).
    """

    def __init__(self, connection: SmtpTransport, message: "OutgoingMessage"):
        self.connection, self.message = connection, message
        self.result: SendResult | None = None
        self.alone = False
        self.tries = 2                      # as SmtpTransport: one more on a fresh connection
        self.data = b""
        self.chunked = False                # BDAT (RFC 3030): the message goes with the envelope

    def write_envelope(self) -> None:
        """The envelope; with CHUNKING the whole message (no content step follows)."""
        connection, smtp = self.connection, self.connection._smtp
        if smtp is None or not smtp.has_extn("pipelining"):
            self.alone = True
            return
        self.chunked = connection.chunks(smtp)
        options = connection._mail_options(smtp, self.message)
        if isinstance(options, SendResult):
            self.result = options
        elif self.chunked:
            data = _chunk_data(self.message)
            self._before_data(lambda: connection._write_chunk(smtp, self.message, options, data))
        else:
            self._before_data(lambda: connection._write_envelope(smtp, self.message, options))

    def read_envelope(self) -> None:
        """The envelope's replies; with CHUNKING the message's result."""
        smtp = self.connection._smtp
        if self.chunked:
            self.result = self._before_data(lambda: self.connection._chunk_replies(smtp, self.message))
            return
        self.data = _smtp_data(self.message)     # made while the server answers the envelope
        self.result = self._before_data(lambda: self.connection._envelope_replies(smtp, self.message))

    def write_content(self) -> None:
        self.result = self.connection._write_content(self.connection._smtp, self.message, self.data)

    def read_result(self) -> None:
        self.result = self.connection._content_reply(self.connection._smtp, self.message)

    def _before_data(self, step: Callable[[], SendResult | None]) -> SendResult | None:
        """A drop before the data costs nothing: the message goes again on its own."""
        try:
            return step()
        except _Reconnect:
            self.connection._drop()
            self.alone, self.tries = True, 1
            return None

    def on_its_own(self) -> SendResult:
        try:
            return self.connection._send_one(self.message, self.tries)
        except _Unreachable as err:
            return SendResult(self.message.message_id, Status.RETRY, None, _unreachable(err))


def _unreachable(err: Exception) -> str:
    return f"cannot reach the SMTP server ({err}); nothing was sent"


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


def _envelope_bytes(message: "OutgoingMessage", options: list[str]) -> bytes:
    """MAIL FROM, RCPT TO and DATA as one pipelined group (RFC 2920)."""
    params = "".join(" " + option for option in options)
    return (f"MAIL FROM:<{_envelope_sender(message)}>{params}\r\nRCPT TO:<{message.rcpt_to}>"
            "\r\nDATA\r\n").encode("utf-8")


def _smtp_data(message: "OutgoingMessage") -> bytes:
    """What follows DATA: `message.build` assembles CRLF line ends and dot-stuffs its
    mail piece by piece (`OutgoingMessage.smtp_data`); other bytes are checked first."""
    if message.built:
        return message.smtp_data()
    return _stuffed(_crlf(message.as_bytes()))


def _chunk_data(message: "OutgoingMessage") -> bytes:
    """What follows BDAT: the message's bytes as they are, with CRLF line ends."""
    if message.built:
        return message.as_bytes()      # built with CRLF line ends
    return _crlf(message.as_bytes())


def _queued(message: "OutgoingMessage", code: int, reply: str) -> SendResult:
    """The server took the message: sent, with its queue id when the reply names one."""
    queued = QUEUE_ID.search(reply)
    return SendResult(message.message_id, Status.SENT, code, reply, queued.group(1) if queued else None)


def _stuffed(data: bytes) -> bytes:
    """RFC 5321 4.5.2: a line that starts with a dot gets one more; then the end-of-data line."""
    return dot_stuffed([data], keep=False)


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
