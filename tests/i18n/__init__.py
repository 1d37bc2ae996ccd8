"""Tests of postbode.i18n."""
