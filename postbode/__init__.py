"""postbode: result updates in YAML become localised newsletters, sent exactly once."""

__version__ = "0.1.0"
