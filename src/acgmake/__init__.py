"""acgmake: lyrics in, a short animated music clip out, offline.

Plugins import what they need from here::

    from acgmake import Artifact, Param, Stage, UserError, hookimpl

and test themselves with :mod:`acgmake.testing`. ``docs/plugins.md`` is the guide.
"""

__version__ = "0.1.0"

from acgmake.errors import UserError  # noqa: E402
from acgmake.hookspecs import hookimpl  # noqa: E402
from acgmake.pipeline import Artifact, NotAvailable, Param, Stage, StageContext  # noqa: E402

__all__ = [
    "Artifact",
    "NotAvailable",
    "Param",
    "Stage",
    "StageContext",
    "UserError",
    "hookimpl",
    "__version__",
]
