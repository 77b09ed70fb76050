"""Compatibility name: ``jaas.engine.cache`` is :mod:`jaas.engine.session.cache`."""

from jaas.engine.session.cache import *  # noqa: F403
from jaas.engine.session.cache import __all__ as __all__
