"""Tests of postbode.campaign."""
