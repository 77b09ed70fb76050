"""Compatibility name: ``jaas.engine.kernels`` is :mod:`jaas.engine.core.kernels`."""

from jaas.engine.core.kernels import *  # noqa: F403
from jaas.engine.core.kernels import __all__ as __all__
