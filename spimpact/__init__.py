"""spimpact: reproducible impact evaluation of social prescribing schemes.

``import spimpact`` stays light: the interactive entry point is imported on first use.

>>> import spimpact
>>> callable(spimpact.open_scheme)
True
"""

from importlib.metadata import version

__version__ = version("spimpact")
__all__ = ["Scheme", "open_scheme"]

_LAZY = {"open_scheme": "spimpact.interactive", "Scheme": "spimpact.interactive"}


def __getattr__(name: str):
    """Import ``open_scheme`` and ``Scheme`` from ``spimpact.interactive`` when first used."""
    if name in _LAZY:
        from spimpact import interactive

        return getattr(interactive, name)
    raise AttributeError(f"module 'spimpact' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
