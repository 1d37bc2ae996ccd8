"""Tests of postbode.web."""
