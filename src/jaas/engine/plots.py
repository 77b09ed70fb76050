"""Compatibility name: ``jaas.engine.plots`` is :mod:`jaas.engine.session.plots`."""

from jaas.engine.session.plots import *  # noqa: F403
from jaas.engine.session.plots import __all__ as __all__
