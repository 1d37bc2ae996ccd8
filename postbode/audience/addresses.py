"""Addresses: as shown, as compared, and as kept after a person is forgotten.

The local part is kept as given for display, the domain is lower-cased
(email-validator's normalisation). Two addresses are the same person when they
are equal ignoring case (`address_key`); that key, hashed with SHA-256, is what
the suppression list keeps after a subscriber is forgotten.
"""
from __future__ import annotations

import hashlib
import importlib
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Iterator

from postbode.errors import AudienceError


def now() -> str:
    """The current UTC time as stored in the database."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise(email: str) -> tuple[str, str]:
    """(address as shown, comparison key) of a valid address; AudienceError if invalid."""
    validate_email, not_valid = _email_validator()
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except not_valid as err:
        raise AudienceError(f"{email!r} is not an email address ({err})") from None
    return result.normalized, result.normalized.lower()


@lru_cache(maxsize=1)
def _email_validator() -> tuple:
    """(validate_email, EmailNotValidError), imported at first use: commands that only count
    or list never load email-validator, and an import asks once, not per address."""
    from email_validator import EmailNotValidError, validate_email

    return validate_email, EmailNotValidError


def address_key(email: str) -> str:
    """The comparison key of any address, even one email-validator refuses (e.g. from a bounce)."""
    try:
        return normalise(email)[1]
    except AudienceError:
        return email.strip().lower()


def email_hash(key: str) -> str:
    """What the suppression list keeps of an address: SHA-256 of its comparison key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def address_hash(email: str) -> str:
    """email_hash of any address's comparison key."""
    return email_hash(address_key(email))


def _validator():
    """email-validator's own module (the package's `validate_email` attribute is the function)."""
    return importlib.import_module("email_validator.validate_email")


@contextmanager
def domains_checked_once() -> Iterator[None]:
    """Within the block, email-validator checks each domain once, not once per address.

    An import holds thousands of addresses on a few domains, and the domain check
    (IDNA, UTS-46) is most of validate_email's work; its answer depends on the
    domain alone, so it is remembered while the import reads its file.
    """
    validator = _validator()
    original = validator.validate_email_domain_name
    if hasattr(original, "cache_info"):  # already inside such a block
        yield
        return
    validator.validate_email_domain_name = lru_cache(maxsize=4096)(original)
    try:
        yield
    finally:
        validator.validate_email_domain_name = original
