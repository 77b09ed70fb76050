"""Compatibility name: ``jaas.engine.partition`` is :mod:`jaas.engine.core.partition`."""

from jaas.engine.core.partition import *  # noqa: F403
from jaas.engine.core.partition import __all__ as __all__
