"""A catalog far larger than any translation is refused at once, naming the file."""
from __future__ import annotations

import pytest

from postbode.errors import TranslationError
from postbode.i18n import catalogs

from conftest import SAMPLE


def _inflate(path, megabytes: int) -> None:
    """The catalog with translator comments added until it is this large."""
    padding = ("# " + "x" * 98 + "\n") * (megabytes * 1024 * 1024 // 100 + 1)
    path.write_text(padding + path.read_text(encoding="utf-8"), encoding="utf-8")


def test_a_catalog_over_the_limit_is_refused_with_its_name(project):
    path = project / "locales" / "en" / "LC_MESSAGES" / "messages.po"
    catalogs.read_catalog(path)  # fine as it is
    _inflate(path, 6)
    with pytest.raises(TranslationError) as err:
        catalogs.read_catalog(path)
    assert str(path) in str(err.value) and "more than the 5 MB" in str(err.value)


def test_check_names_the_oversized_catalog_and_exits_1(invoke, project):
    path = project / "locales" / "de" / "LC_MESSAGES" / "messages.po"
    _inflate(path, 6)
    result = invoke("check", SAMPLE)
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "messages.po" in out and "more than the 5 MB" in out and "Traceback" not in out
