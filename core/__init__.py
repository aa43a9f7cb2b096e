"""seglens: who are our users, really, and what should we show each group?

The public API for plugin authors: `hookimpl`, the dataclasses in `seglens.model`, and
`SeglensError` for mistakes a user can fix.
"""
from __future__ import annotations

from .errors import SeglensError
from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["SeglensError", "hookimpl", "__version__"]
