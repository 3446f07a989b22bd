"""spimpact: reproducible impact evaluation of social prescribing schemes."""

__version__ = "0.1.0"
