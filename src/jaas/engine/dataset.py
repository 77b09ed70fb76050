"""Compatibility name: ``jaas.engine.dataset`` is :mod:`jaas.engine.session.dataset`."""

from jaas.engine.session.dataset import *  # noqa: F403
from jaas.engine.session.dataset import __all__ as __all__
