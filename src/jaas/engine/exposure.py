"""Compatibility name: ``jaas.engine.exposure`` is :mod:`jaas.engine.core.exposure`."""

from jaas.engine.core.exposure import *  # noqa: F403
from jaas.engine.core.exposure import __all__ as __all__
