"""Message: per-recipient substitution, headers, header-injection refusal and the MIME bytes."""
from __future__ import annotations

import email
import email.header
import email.policy
from pathlib import Path
from urllib.parse import unquote

import pytest

from postbode import message, tokens
from postbode.audience import Recipient
from postbode.build import build_variants
from postbode.config import Settings
from postbode.errors import HeaderInjectionError, TemplateError
from postbode.render import Rendered

KEY = "test-signing-key-0123456789abcdef"
HTML = ('<!doctype html><html lang="nl"><body><p>__PB_GREETING__</p>'
        '<p>Café – tekst</p><a href="__PB_WEB_URL__">web</a> '
        '<a href="__PB_PREFERENCES_URL__">voorkeuren</a> '
        '<a href="__PB_UNSUBSCRIBE_URL__">afmelden</a></body></html>')
TEXT = "__PB_GREETING__\n\nCafé – tekst\n\nWeb: __PB_WEB_URL__\nAfmelden: __PB_UNSUBSCRIBE_URL__\n"
GREETINGS = {"formal": "Geachte __PB_NAME__,", "informal": "Beste __PB_NAME__,",
             "formal_anonymous": "Geachte lezer,", "informal_anonymous": "Beste lezer,"}


def make_settings(**changes) -> Settings:
    base = Settings(root=Path("/nonexistent"), sender_name="Coalitie tegen uitbuiting",
                    sender_email="nieuwsbrief@example.org", reply_to="info@example.org",
                    base_url="https://nieuwsbrief.example.org", secret_key=KEY,
                    list_id="Nieuwsbrief <nieuwsbrief.example.org>",
                    unsubscribe_mailto="afmelden@example.org")
    return base.with_overrides(**changes)


def make_rendered(**changes) -> Rendered:
    fields = dict(newsletter_id="2018-07-resultaten", locale="nl", view=None,
                  subject="Resultaten zomer 2018", preheader="", html=HTML, text=TEXT,
                  lang="nl", direction="ltr", greetings=GREETINGS)
    fields.update(changes)
    return Rendered(**fields)


def reader(email_address: str = "lezer@example.org", name: str | None = "Voorbeeld Lezer",
           formality: str = "formal") -> Recipient:
    return Recipient(subscriber_id=7, email=email_address, name=name, locale="nl",
                     formality=formality, view=None, segment="donors")


def one(recipient: Recipient | None = None, settings: Settings | None = None,
        rendered: Rendered | None = None, **options) -> message.OutgoingMessage:
    settings = settings or make_settings()
    variant = message.prepare(rendered or make_rendered(), settings)
    return message.build(variant, recipient or reader(), "campaign-1", settings, **options)


def parse(mail: message.OutgoingMessage) -> email.message.EmailMessage:
    return email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)


def content(part: email.message.EmailMessage) -> str:
    """A text part's content with its canonical CRLF line breaks read as newlines."""
    return part.get_content().replace("\r\n", "\n")


def test_name_is_html_escaped_in_html_and_raw_in_text() -> None:
    mail = one(reader(name="Jan <b>de Vries</b> & Co"))
    assert "<p>Geachte Jan &lt;b&gt;de Vries&lt;/b&gt; &amp; Co,</p>" in mail.html
    assert "<b>de" not in mail.html
    assert mail.text.startswith("Geachte Jan <b>de Vries</b> & Co,\n")


def test_url_with_ampersand_is_attribute_escaped_in_href() -> None:
    mail = one(settings=make_settings(base_url="https://example.org/nb?a=1&b=2"))
    assert 'href="https://example.org/nb?a=1&amp;b=2/u/' in mail.html
    assert "?a=1&b=2/u/" in mail.text


def test_web_url_percent_encodes_its_parts() -> None:
    mail = one(rendered=make_rendered(view="dona teurs", locale="nl_BE"))
    url, _, query = mail.values[message.WEB_URL].partition("?t=")
    assert url == "https://nieuwsbrief.example.org/v/2018-07-resultaten/nl_BE/dona%20teurs"
    # a segment's view opens only with the signed token of that view
    payload = tokens.verify(make_settings(), "web", unquote(query))
    assert (payload["n"], payload["v"]) == ("2018-07-resultaten", "dona teurs")


def test_links_carry_verifiable_tokens() -> None:
    settings = make_settings()
    mail = one(settings=settings)
    unsubscribe = mail.values[message.UNSUBSCRIBE_URL]
    preferences = mail.values[message.PREFERENCES_URL]
    assert unsubscribe.startswith("https://nieuwsbrief.example.org/u/")
    assert preferences.startswith("https://nieuwsbrief.example.org/p/")
    token = unsubscribe.rsplit("/", 1)[1]
    assert tokens.verify(settings, "unsubscribe", token)["email"] == "lezer@example.org"
    assert f'href="{unsubscribe}"' in mail.html


@pytest.mark.parametrize("formality,name,expected", [
    ("formal", "Anna Jansen", "Geachte Anna Jansen,"),
    ("informal", "Anna", "Beste Anna,"),
    ("formal", None, "Geachte lezer,"),
    ("informal", "  ", "Beste lezer,"),
])
def test_greeting_follows_formality_and_name(formality: str, name: str | None, expected: str) -> None:
    mail = one(reader(name=name, formality=formality))
    assert mail.text.startswith(expected + "\n")
    assert f"<p>{expected}</p>" in mail.html


@pytest.mark.parametrize("field", ["subject", "sender_name"])
def test_header_injection_from_newsletter_or_settings_is_refused(field: str) -> None:
    evil = "Nieuws\r\nBcc: x@example.org"
    rendered = make_rendered(subject=evil) if field == "subject" else make_rendered()
    settings = make_settings(sender_name=evil) if field == "sender_name" else make_settings()
    with pytest.raises(HeaderInjectionError) as caught:
        message.prepare(rendered, settings)
    text = str(caught.value)
    if field == "subject":
        assert "Subject header" in text and "newsletter 2018-07-resultaten" in text
    else:
        assert "From header" in text and "postbode.toml" in text


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b", "a\u2028b"])
def test_recipient_name_with_line_break_is_refused(value: str) -> None:
    with pytest.raises(HeaderInjectionError, match="To header.*subscriber 7"):
        one(reader(name=value))


def test_base_url_with_line_break_is_refused() -> None:
    with pytest.raises(HeaderInjectionError, match="List-Unsubscribe"):
        one(settings=make_settings(base_url="https://example.org\r\nBcc: x@example.org"))


def test_bytes_parse_into_text_and_html_with_the_right_headers() -> None:
    mail = one(reader(name="Anna Jansen"))
    parsed = parse(mail)
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = list(parsed.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert content(text) == mail.text
    assert content(html) == mail.html
    assert parsed["From"] == "Coalitie tegen uitbuiting <nieuwsbrief@example.org>"
    assert parsed["To"].addresses[0].display_name == "Anna Jansen"
    assert parsed["Reply-To"] == "info@example.org"
    assert parsed["Subject"] == "Resultaten zomer 2018"
    assert parsed["Message-ID"] == mail.message_id
    assert parsed["List-Id"] == "Nieuwsbrief <nieuwsbrief.example.org>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"] == (f"<{mail.values[message.UNSUBSCRIBE_URL]}>, "
                                          "<mailto:afmelden@example.org?subject=unsubscribe>")
    assert parsed["Content-Language"] == "nl"
    assert parsed["Date"].datetime is not None
    assert not parsed.defects and not text.defects and not html.defects


def test_list_unsubscribe_has_no_mailto_unless_configured() -> None:
    parsed = parse(one(settings=make_settings().with_overrides(unsubscribe_mailto="")))
    assert "mailto:" not in parsed["List-Unsubscribe"]
    assert parsed["List-Unsubscribe"].startswith("<https://nieuwsbrief.example.org/u/")


def test_non_ascii_name_and_subject_are_encoded_and_read_back() -> None:
    mail = one(reader(name="Zoë Ğündoğdu, jr."),
               rendered=make_rendered(subject="Résultats — 2018 ‘aangifte’ " + " ".join(["lang"] * 30)))
    raw = mail.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    parsed = parse(mail)
    assert parsed["To"].addresses[0].display_name == "Zoë Ğündoğdu, jr."
    assert parsed["Subject"] == "Résultats — 2018 ‘aangifte’ " + " ".join(["lang"] * 30)
    assert not mail.needs_smtputf8


def test_non_ascii_address_needs_smtputf8() -> None:
    mail = one(reader(email_address="zoë@example.org", name="Zoë"))
    assert mail.needs_smtputf8
    assert mail.rcpt_to == "zoë@example.org"
    assert "zoë@example.org".encode() in mail.as_bytes()
    # email's bytes parser reads raw UTF-8 headers as escapes; SMTPUTF8 readers decode UTF-8
    parsed = email.message_from_string(mail.as_bytes().decode("utf-8"), policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "zoë@example.org"


def test_every_line_is_short_and_ends_in_crlf() -> None:
    long_line = "woord" * 2000
    mail = one(rendered=make_rendered(html=HTML.replace("tekst", long_line),
                                      text=TEXT.replace("tekst", long_line)))
    raw = mail.as_bytes()
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert long_line in content(parse(mail).get_body(("plain",)))


def test_message_id_is_deterministic_per_campaign_and_recipient() -> None:
    settings = make_settings()
    variant = message.prepare(make_rendered(), settings)
    first = message.build(variant, reader(), "campaign-1", settings).message_id
    again = message.build(variant, reader(email_address=" LEZER@example.org"), "campaign-1",
                          settings).message_id
    other_campaign = message.build(variant, reader(), "campaign-2", settings).message_id
    other_reader = message.build(variant, reader("ander@example.org"), "campaign-1", settings).message_id
    assert first == again
    assert len({first, other_campaign, other_reader}) == 3
    assert first.startswith("<") and first.endswith("@example.org>") and len(first) == 32 + 14


def test_test_mail_names_its_variant_in_subject_and_header() -> None:
    mail = one(rendered=make_rendered(locale="nl_BE", view="funders"), test=True)
    assert mail.subject == "[TEST nl_BE · funders] Resultaten zomer 2018"
    parsed = parse(mail)
    assert parsed["Subject"] == "[TEST nl_BE · funders] Resultaten zomer 2018"
    assert parsed[message.TEST_HEADER] == "locale=nl_BE; view=funders"
    assert parse(one(test=True))["Subject"] == "[TEST nl · public] Resultaten zomer 2018"
    assert message.TEST_HEADER not in parse(one())


def test_bytes_are_built_once() -> None:
    mail = one()
    assert mail.as_bytes() is mail.as_bytes()


def test_message_without_a_variant_still_serialises() -> None:
    mail = one()
    bare = message.OutgoingMessage(recipient=mail.recipient, message_id=mail.message_id,
                                   mail_from=mail.mail_from, rcpt_to=mail.rcpt_to,
                                   subject=mail.subject, headers=mail.headers,
                                   html=mail.html, text=mail.text)
    parsed = email.message_from_bytes(bare.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == mail.subject
    assert content(parsed.get_body(("html",))) == mail.html


def test_template_without_unsubscribe_link_is_refused() -> None:
    with pytest.raises(TemplateError, match="unsubscribe"):
        message.prepare(make_rendered(text="__PB_GREETING__\nGeen afmeldlink\n"), make_settings())


def test_unknown_marker_is_refused() -> None:
    with pytest.raises(TemplateError, match="__PB_TYPO__"):
        message.prepare(make_rendered(html=HTML + "__PB_TYPO__"), make_settings())


def test_fill_for_the_web_version_escapes_values() -> None:
    variant = message.prepare(make_rendered(), make_settings())
    html, text = message.fill(variant, {message.GREETING: "Beste <lezer>",
                                        message.UNSUBSCRIBE_URL: "/beheer?a=1&b=2"})
    assert "<p>Beste &lt;lezer&gt;</p>" in html
    assert 'href="/beheer?a=1&amp;b=2"' in html
    assert "Afmelden: /beheer?a=1&b=2" in text


def test_sample_newsletter_message(settings: Settings, project: Path) -> None:
    keyed = settings.with_overrides(secret_key=KEY)
    result = build_variants(project / "newsletters/2018-07-resultaten.yaml", ["nl"], [None], keyed)
    mail = message.build(message.prepare(result.variant("nl"), keyed), reader(name="Anna Jansen"),
                         "campaign-1", keyed)
    parsed = parse(mail)
    assert content(parsed.get_body(("html",))) == mail.html
    assert "Geachte Anna Jansen," in content(parsed.get_body(("plain",)))
    assert "__PB_" not in mail.html and "__PB_" not in mail.text
    assert parsed["From"].addresses[0].addr_spec == keyed.sender_email


def test_long_non_ascii_name_is_split_into_short_encoded_words() -> None:
    name = "فاطمة الزهراء بنت محمد بن عبد الله العمراني " * 3
    mail = one(reader(name=name.strip()))
    head = mail.as_bytes().split(b"\r\n\r\n", 1)[0]
    to_lines = head.split(b"\r\nSubject:")[0].split(b"To: ", 1)[1].split(b"\r\n")
    assert len(to_lines) > 3 and all(len(line) <= 78 for line in to_lines)
    # RFC 2047 drops the folding between encoded words; email.header follows it, while
    # the address parser of policy.default inserts spaces there (also for its own output).
    raw_to = email.message_from_bytes(mail.as_bytes())["To"]
    decoded = str(email.header.make_header(email.header.decode_header(raw_to)))
    assert decoded == f"{name.strip()} <lezer@example.org>"


HOSTILE = "{{ 7*7 }} {% include 'x' %} <script>alert(1)</script>"


def test_template_syntax_and_script_in_the_newsletter_stay_literal_in_the_sent_bytes(
        settings: Settings, project: Path) -> None:
    path = project / "newsletters/2018-07-resultaten.yaml"
    source = path.read_text(encoding="utf-8")
    subject = next(line for line in source.splitlines() if line.startswith("subject:"))
    source = (source.replace(subject, f'subject: "{HOSTILE}"')
              .replace('"Waarom jonge slachtoffers zelden aangifte doen"', f'"{HOSTILE}"')
              .replace("  Vier organisaties, één doel", f"  {HOSTILE}\n\n  Vier organisaties, één doel"))
    path.write_text(source + "\nliteral: true\n", encoding="utf-8")  # template-like text on purpose
    keyed = settings.with_overrides(secret_key=KEY)
    result = build_variants(path, ["nl"], [None], keyed)
    mail = message.build(message.prepare(result.variant("nl"), keyed), reader(), "campaign-1", keyed)
    parsed = parse(mail)
    assert parsed["Subject"] == HOSTILE
    html, text = content(parsed.get_body(("html",))), content(parsed.get_body(("plain",)))
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3   # subject as title, section title, intro
    assert html.count("{{ 7*7 }}") >= 3 and html.count("{% include ") >= 3
    assert text.count(HOSTILE) >= 3
    assert "49" not in text.replace("249", "")
    assert not any(word.strip("<>;&") == "49" for word in html.replace(">", "> ").split())


@pytest.mark.parametrize("command", ["check", "build"])
def test_a_sender_name_in_postbode_toml_that_would_add_a_bcc_is_refused(invoke, project: Path,
                                                                      command: str) -> None:
    toml = project / "postbode.toml"
    text = toml.read_text(encoding="utf-8")
    sender = text.index("[sender]")
    name_line = text.index("name = ", sender)
    closing = text.index('"\n', name_line)
    toml.write_text(text[:closing] + '\\r\\nBcc: x@example.org' + text[closing:], encoding="utf-8")
    (project / "uit").mkdir()
    args = ["--out", "uit"] if command == "build" else []
    result = invoke(command, "newsletters/2018-07-resultaten.yaml", "-l", "nl", *args)
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "From header" in said and "[sender] name" in said and "postbode.toml" in said
    assert "Traceback" not in result.output
    assert list((project / "uit").iterdir()) == []


def test_an_address_that_is_not_ascii_with_a_name_that_is_builds() -> None:
    mail = one(reader(email_address="jürgen@example.org", name="Jurgen Muller"))
    assert mail.needs_smtputf8 and mail.eight_bit
    assert "To: Jurgen Muller <jürgen@example.org>\r\n".encode() in mail.as_bytes()
