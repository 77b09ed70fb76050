"""Compatibility name: ``jaas.engine.correlate`` is :mod:`jaas.engine.core.correlate`."""

from jaas.engine.core.correlate import *  # noqa: F403
from jaas.engine.core.correlate import __all__ as __all__
