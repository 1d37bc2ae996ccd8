"""Who a send reaches: the recipients of some segments, streamed, and the counts of a plan."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from sqlalchemy import ColumnElement, Connection, case, exists, func, select

from postbode import counting, store
from postbode.audience.model import DEFAULT_FORMALITY, Consent, PlanCounts, Recipient
from postbode.audience.segments import Segment, SegmentsFile, attribute, find_in, load_file
from postbode.errors import AudienceError
from postbode.store.schema import subscribers, suppressions

if TYPE_CHECKING:
    from postbode.config import Settings

# Rows fetched from the database at a time while streaming.
BATCH_SIZE = 1000


def effective_locale(locale: str | None, settings: "Settings") -> str:
    """The subscriber's own locale when its language is one we send in, else the default."""
    return counting.sent_locale(locale, _languages(settings), settings.default_locale)


def _languages(settings: "Settings") -> tuple[str, ...]:
    return tuple(sorted({loc.split("_")[0] for loc in settings.locales}))


class _Locales(dict):
    """effective_locale, remembered per stored locale (a list has only a handful)."""

    def __init__(self, settings: "Settings"):
        super().__init__()
        self.settings = settings

    def __missing__(self, locale: str | None) -> str:
        self[locale] = found = effective_locale(locale, self.settings)
        return found


def _chosen(segment_names: list[str], settings: "Settings") -> tuple[SegmentsFile, list[Segment]]:
    if not segment_names:
        raise AudienceError("no segment given; name at least one, e.g. --segment everyone")
    declared = load_file(settings)
    return declared, find_in(declared, settings, segment_names)


def _segment_index(chosen: list[Segment]) -> ColumnElement[int]:
    """The index of the first requested segment a subscriber belongs to (NULL: none)."""
    return case(*((segment.condition, i) for i, segment in enumerate(chosen)), else_=None)


_SUPPRESSED = exists().where(suppressions.c.email_hash == subscribers.c.email_hash)


def resolve(conn: Connection, segments: list[str], settings: "Settings", *,
            leave_out: ColumnElement[bool] | None = None) -> Iterator[Recipient]:
    """The unique, subscribed, unsuppressed recipients of the segments, streamed in id order.

    A person in several requested segments gets the first one requested. Each
    recipient carries the attribute fields segments.yaml declares. `leave_out` is a
    further condition over `subscribers` (the campaign's "already has it"), in the query.
    """
    declared, chosen = _chosen(segments, settings)
    names = list(declared.fields)
    inner = select(
        subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.locale,
        subscribers.c.formality, _segment_index(chosen).label("seg"),
        *(attribute(name, kind).label(f"field_{i}") for i, (name, kind) in enumerate(declared.fields.items())),
        subscribers.c.subscriber_key,  # last, after the fields
    ).where(subscribers.c.consent == Consent.SUBSCRIBED, ~_SUPPRESSED,
            *(() if leave_out is None else (~leave_out,))).subquery()
    query = select(inner).where(inner.c.seg.is_not(None)).order_by(inner.c.id)
    locales = _Locales(settings)
    for row in _in_batches(conn, query, inner.c.id):
        segment = chosen[row[5]]
        fields = {name: value for name, value in zip(names, row[6:]) if value is not None}
        yield Recipient(
            subscriber_id=row[0], email=row[1], name=row[2], locale=locales[row[3]],
            formality=segment.formality or row[4] or DEFAULT_FORMALITY,
            view=segment.view, segment=segment.name, fields=fields, key=row.subscriber_key,
        )


def _in_batches(conn: Connection, query, key) -> Iterator:
    """The rows of a query ordered by `key`, BATCH_SIZE at a time.

    Paging by key instead of a streaming cursor: a cursor held open needs a transaction
    on PostgreSQL, and this connection may run others between two batches.
    """
    last = None
    while True:
        page = query if last is None else query.where(key > last)
        rows = conn.execute(page.limit(BATCH_SIZE)).all()
        yield from rows
        if len(rows) < BATCH_SIZE:
            return
        last = rows[-1][0]


def plan_counts(conn: Connection, segments: list[str], settings: "Settings", *,
                mark: ColumnElement[str | None] | None = None,
                leave_out_marked: bool = True, keep: bool = False) -> PlanCounts:
    """Recipients per (segment, locale) and members left out by consent state or suppression.

    `mark` (a text expression over `subscribers`, NULL for most) sorts recipients further:
    `marked` counts them per value, and with `leave_out_marked` they are not recipients.
    `keep`: on SQLite, leave the query with `counting`, so the next count of the same
    segments runs without loading SQLAlchemy (`subscribers list --count`).
    """
    _, chosen = _chosen(segments, settings)
    marks = () if mark is None else (mark.label("mark"),)
    inner = select(_segment_index(chosen).label("seg"), subscribers.c.locale, subscribers.c.consent,
                   _SUPPRESSED.label("suppressed"), *marks).subquery()
    columns = [inner.c.seg, inner.c.locale, inner.c.consent, inner.c.suppressed]
    if mark is not None:
        columns.append(inner.c.mark)
    query = select(*columns, func.count()).where(inner.c.seg.is_not(None)).group_by(*columns)
    rules = counting.TallyRules(tuple(s.name for s in chosen), str(Consent.SUBSCRIBED),
                                _languages(settings), settings.default_locale)
    if keep and mark is None and conn.dialect.name == "sqlite":
        rows, sql, params = store.run_seen(conn, query)
        counting.keep(settings, segments, store.current(conn), sql, params, rules)
    else:
        rows = conn.execute(query).all()
    return counting.tally(rows, rules, marks=mark is not None, leave_out_marked=leave_out_marked)
