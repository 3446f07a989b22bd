"""spimpact: reproducible impact evaluation of social prescribing schemes."""

from importlib.metadata import version

__version__ = version("spimpact")
