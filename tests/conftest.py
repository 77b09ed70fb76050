"""Test-suite wide configuration: shared fixture plugins, and a clean exit."""

from __future__ import annotations

import os
import sys

import pytest

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.slurm"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without running native libraries' exit handlers.

    Seen here: after all tests passed and the summary was printed, the process hung in
    ``_dl_fini`` inside the libldap bundled with psycopg's binary wheel (a ``free`` of a
    bad pointer that spins). Every plugin has finished by now (this hook runs last), so
    the results are final; ``os._exit`` skips only the C-level teardown.
    """
    status = config.stash.get(_EXIT, None)
    if status is None or os.environ.get("JAAS_TEST_NORMAL_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


_EXIT = pytest.StashKey[int]()
