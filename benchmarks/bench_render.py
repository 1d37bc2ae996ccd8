"""Render and personalisation speed for the sample newsletter, as ratios measured in one run.

    .venv/bin/python benchmarks/bench_render.py [--recipients N]

Part 1: render + inline of one variant (ms), next to a plain Jinja render of
the same template, and premailer with one shared instance against a new one
per variant.
Part 2: personalised messages per second. Fast path: prepare once per variant,
then build + as_bytes per recipient. Naive path: render + inline + EmailMessage
per recipient. Also the fast path in two processes (this machine's 2 cores).
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from premailer import Premailer  # noqa: E402

from postbode import inline as inline_stage  # noqa: E402
from postbode import message, render  # noqa: E402
from postbode.audience import Recipient  # noqa: E402
from postbode.config import Settings, load_settings  # noqa: E402
from postbode.content import load_newsletter  # noqa: E402
from postbode.i18n import localize  # noqa: E402

SAMPLE = ROOT / "newsletters" / "2018-07-resultaten.yaml"
LOCALES = ("nl", "de", "ar")
KEY = "benchmark-signing-key-not-secret-0123456789"


def timed(work: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs after a warm-up: the figure least disturbed by other processes."""
    work()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return min(samples)


def settings() -> Settings:
    loaded = load_settings(ROOT / "postbode.toml", env={})
    return loaded.with_overrides(secret_key=KEY, completeness={})


def recipients(count: int) -> list[Recipient]:
    names = ("Anna de Vries", "Jürgen Müller", None, "Zoë <b>Ğündoğdu</b>", "Fatima El Amrani")
    return [Recipient(subscriber_id=i, email=f"lezer{i}@example.org", name=names[i % len(names)],
                      locale=LOCALES[i % len(LOCALES)], formality=("formal", "informal")[i % 2],
                      view=None, segment="everyone") for i in range(count)]


def part_render(config: Settings) -> None:
    newsletter = load_newsletter(SAMPLE)
    localized = localize(newsletter, "nl", config)
    env = render.make_environment(config, localized.locale, localized.translations)
    context = render._context(localized, None, config)
    template = env.get_template(render.HTML_TEMPLATE)
    rendered = render.render(localized, None, config)
    options = dict(strip_important=False, keep_style_tags=True, disable_validation=True,
                   disable_link_rewrites=True, allow_network=False,
                   cssutils_logging_level=logging.CRITICAL)
    shared = Premailer(**options)

    plain = timed(lambda: template.render(context), 30)
    stage = timed(lambda: render.render(localized, None, config), 20)
    full = timed(lambda: inline_stage.inline(render.render(localized, None, config)), 10)
    reused = timed(lambda: shared.transform(rendered.html, pretty_print=False), 20)
    fresh = timed(lambda: Premailer(**options).transform(rendered.html, pretty_print=False), 20)

    print("== render + inline, sample newsletter, one variant (nl, public view), best of N, ms")
    print(f"plain Jinja render of email.html     {plain * 1e3:8.2f} ms   1.0x")
    print(f"render.render (HTML + text + greet)  {stage * 1e3:8.2f} ms   {stage / plain:5.1f}x")
    print(f"render + inline (what build does)    {full * 1e3:8.2f} ms   {full / plain:5.1f}x")
    print(f"premailer, one shared instance       {reused * 1e3:8.2f} ms")
    print(f"premailer, a new instance each time  {fresh * 1e3:8.2f} ms   "
          f"(shared/new = {reused / fresh:.2f}; identical output: "
          f"{shared.transform(rendered.html, pretty_print=False) == Premailer(**options).transform(rendered.html, pretty_print=False)})")
    print(f"inlined HTML size                    {len(inline_stage.inline(rendered).html.encode()) / 1024:8.1f} KB")
    print()


def prepared_variants(config: Settings) -> dict[str, message.PreparedVariant]:
    newsletter = load_newsletter(SAMPLE)
    return {locale: message.prepare(inline_stage.inline(render.render(localize(newsletter, locale, config),
                                                                      None, config)), config)
            for locale in LOCALES}


def fast_path(config: Settings, people: list[Recipient]) -> tuple[float, int]:
    """Seconds and bytes for prepare-once + build/as_bytes per recipient."""
    start = time.perf_counter()
    variants = prepared_variants(config)
    size = 0
    for person in people:
        size += len(message.build(variants[person.locale], person, "bench", config).as_bytes())
    return time.perf_counter() - start, size


def _fast_worker(args: tuple[int, int]) -> tuple[float, int]:
    offset, count = args
    people = recipients(offset + count)[offset:]
    return fast_path(settings(), people)


def email_message(mail: message.OutgoingMessage) -> bytes:
    """The naive serialisation: the standard library builds the MIME tree per message."""
    out = EmailMessage(policy=SMTP)
    for name, value in mail.headers:
        out[name] = value
    out.set_content(mail.text)
    out.add_alternative(mail.html, subtype="html")
    return out.as_bytes()


def naive_path(config: Settings, people: list[Recipient]) -> float:
    """Seconds for render + inline + EmailMessage for every recipient."""
    newsletter = load_newsletter(SAMPLE)
    start = time.perf_counter()
    for person in people:
        rendered = inline_stage.inline(render.render(localize(newsletter, person.locale, config),
                                                     None, config))
        mail = message.build(message.prepare(rendered, config), person, "bench", config)
        email_message(mail)
    return time.perf_counter() - start


def part_messages(config: Settings, count: int) -> None:
    people = recipients(count)
    fast_seconds, size = fast_path(config, people)
    fast_rate = count / fast_seconds

    variants = prepared_variants(config)
    mails = [message.build(variants[p.locale], p, "bench", config) for p in people[:2000]]
    start = time.perf_counter()
    for mail in mails:
        email_message(mail)
    stdlib_rate = len(mails) / (time.perf_counter() - start)
    start = time.perf_counter()
    for mail in mails:
        mail._bytes = None
        mail.as_bytes()
    bytes_rate = len(mails) / (time.perf_counter() - start)

    naive_count = 30
    naive_rate = naive_count / naive_path(config, people[:naive_count])

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        half = count // 2
        start = time.perf_counter()
        results = pool.map(_fast_worker, [(0, half), (half, count - half)])
        two_rate = count / (time.perf_counter() - start)
        two_worker_rate = sum(half / seconds for seconds, _ in results)

    print(f"== personalised messages, {count} recipients over {len(LOCALES)} locales")
    print(f"naive: render + inline + EmailMessage per recipient  {naive_rate:9.1f} msg/s   1.0x")
    print(f"fast path, 1 process (incl. prepare)                 {fast_rate:9.0f} msg/s "
          f"{fast_rate / naive_rate:7.0f}x   avg {size / count / 1024:.1f} KB/message")
    print(f"fast path, 2 processes (wall, incl. start-up)        {two_rate:9.0f} msg/s "
          f"{two_rate / naive_rate:7.0f}x")
    print(f"fast path, 2 processes (sum of worker rates)         {two_worker_rate:9.0f} msg/s "
          f"{two_worker_rate / naive_rate:7.0f}x")
    print(f"serialising only: EmailMessage.as_bytes              {stdlib_rate:9.0f} msg/s   1.0x")
    print(f"serialising only: OutgoingMessage.as_bytes           {bytes_rate:9.0f} msg/s "
          f"{bytes_rate / stdlib_rate:7.1f}x")
    print(f"targets: >= 50x the naive path, >= 3,000 msg/s -> "
          f"{'met' if fast_rate / naive_rate >= 50 and max(fast_rate, two_rate) >= 3000 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10000)
    args = parser.parse_args()
    config = settings()
    part_render(config)
    part_messages(config, args.recipients)


if __name__ == "__main__":
    main()
