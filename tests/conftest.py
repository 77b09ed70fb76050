"""Test-suite wide configuration: shared fixture plugins."""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.slurm"]
