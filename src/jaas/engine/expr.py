"""Compatibility name: ``jaas.engine.expr`` is :mod:`jaas.engine.lang.expr`."""

from jaas.engine.lang.expr import *  # noqa: F403
from jaas.engine.lang.expr import __all__ as __all__
