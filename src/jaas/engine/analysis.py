"""Compatibility name: ``jaas.engine.analysis`` is :mod:`jaas.engine.session.analysis`."""

from jaas.engine.session.analysis import *  # noqa: F403
from jaas.engine.session.analysis import __all__ as __all__
