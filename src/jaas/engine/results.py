"""Compatibility name: ``jaas.engine.results`` is :mod:`jaas.engine.session.results`."""

from jaas.engine.session.results import *  # noqa: F403
from jaas.engine.session.results import __all__ as __all__
