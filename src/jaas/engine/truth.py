"""Compatibility name: ``jaas.engine.truth`` is :mod:`jaas.engine.session.truth`."""

from jaas.engine.session.truth import *  # noqa: F403
from jaas.engine.session.truth import __all__ as __all__
