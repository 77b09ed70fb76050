"""Test-suite wide configuration: fixture plugins, offline test data, CI skip policy, exit.

Three rules live here, for every test of the project:

1. **Under CI=true no test is skipped silently.** A test (or a whole module) that skips
   fails instead, unless its node id is on ``SKIP_ALLOWED`` below with the reason it may
   skip in CI. ``xfail`` is not a skip and is not affected.
2. **Test data from other software is found offline.** ``$JAAS_TESTDATA`` and
   ``../shared/testdata`` (beside the project root) are searched before the network:
   ``skhep_testdata.data_path`` resolves files from there, and ``$JAAS_TESTDATA`` is set
   to the directory found so tests that look it up find it too.
3. **The exit status is pytest's own, always.** An exception in a background thread,
   or one Python could not raise (``__del__``...), fails the test during which it
   happened. The process leaves with ``os._exit`` only when psycopg's binary wheel was
   loaded (its bundled libldap was seen to hang in C exit handlers, ``_dl_fini``, after
   every test had passed), and then only after pytest has finished everything, with the
   status pytest returned (``pytest_cmdline_main`` wrapper), raised to 1 if a thread
   died after the session. ``JAAS_TEST_NORMAL_EXIT=1`` turns that off.

   Tried for the cause (2026-12): psycopg's pure-Python implementation on Debian's
   libpq5 (``PSYCOPG_IMPL=python``) imports and connects fine, but the hang could not
   be reproduced with the binary wheel either (postgres test files run repeatedly with a
   normal exit), so the dependency stays ``psycopg[binary]`` and this guard stays,
   narrowed to when that wheel is loaded.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.slurm"]

# node id (or a prefix of it: a file, or a test without its parameters) -> the reason it
# may skip under CI=true. Empty: CI installs everything every test needs.
SKIP_ALLOWED: dict[str, str] = {}


def in_ci() -> bool:
    """True when the run is CI's (``CI`` set to anything but empty, 0, false, no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_allowed(nodeid: str) -> str | None:
    """The reason ``nodeid`` may skip under CI, or None when it must not."""
    for key, reason in SKIP_ALLOWED.items():
        if nodeid == key or nodeid.startswith((key + "::", key + "[")):
            return reason
    return None


def _fail_skip(report: Any) -> None:
    """Turn a skip report into a failure naming the skip reason and the allow-list."""
    if not in_ci() or not report.skipped or hasattr(report, "wasxfail"):
        return
    if skip_allowed(report.nodeid) is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true: {reason}\n"
        "CI must run every test: install what it needs (pyproject extras, "
        "scripts/ensure-system-packages) or add it to SKIP_ALLOWED in tests/conftest.py "
        "with the reason"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    _fail_skip(report)
    return report


# --- offline test data ---


def testdata_dirs(rootpath: Path) -> list[Path]:
    """Directories holding test data written by other software, in search order."""
    dirs = []
    env = os.environ.get("JAAS_TESTDATA")
    if env:
        dirs.append(Path(env))
    dirs.append(rootpath.parent / "shared" / "testdata")
    return [d for d in dirs if d.is_dir()]


def _offline_skhep_testdata(dirs: list[Path]) -> None:
    try:
        import skhep_testdata
    except ImportError:
        return
    online = skhep_testdata.data_path
    if getattr(online, "_jaas_offline", False):
        return

    def data_path(filename: str, raise_missing: bool = True, cache_dir: str | None = None) -> str:
        for d in dirs:
            if (d / filename).is_file():
                return str(d / filename)
        return str(online(filename, raise_missing=raise_missing, cache_dir=cache_dir))

    data_path._jaas_offline = True  # type: ignore[attr-defined]
    skhep_testdata.data_path = data_path


# --- shared real services ---


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One real Chromium per test module (a launch is its driver's and the browser's
    start-up, ~1.5 s of CPU); tests take ``browser`` (tests/portal/test_browser.py), which
    closes what each test opened."""
    from tests.portal.test_browser import launched

    with launched() as b:
        yield b


# --- exit status ---

_THREAD_ERRORS: list[str] = []


def _record_thread_error(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else "?"
    _THREAD_ERRORS.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")
    _previous_excepthook(args)


_previous_excepthook = threading.excepthook


def pytest_configure(config: pytest.Config) -> None:
    # a dying thread or an exception in __del__ fails the test it happened in
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnraisableExceptionWarning")
    # every keep-up pipeline a test starts dies with this run, even if it is killed
    os.environ.setdefault("JAAS_KUP_OWNER_PID", str(os.getpid()))
    dirs = testdata_dirs(config.rootpath)
    if dirs:
        os.environ.setdefault("JAAS_TESTDATA", str(dirs[0]))
        _offline_skhep_testdata(dirs)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    """After pytest has finished (unconfigure and cleanups included), leave with its status."""
    global _previous_excepthook
    _previous_excepthook = threading.excepthook
    threading.excepthook = _record_thread_error
    show = warnings.showwarning
    # pytest only warns about a thread or __del__ exception outside any test: count it
    late = (pytest.PytestUnhandledThreadExceptionWarning, pytest.PytestUnraisableExceptionWarning)

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, late):
            _THREAD_ERRORS.append(str(message).strip().splitlines()[0])
        show(message, category, *args, **kwargs)

    warnings.showwarning = showwarning
    try:
        status = yield  # an exception here propagates: the normal exit reports it
    finally:
        warnings.showwarning = show
        threading.excepthook = _previous_excepthook
    code = int(status)
    if _THREAD_ERRORS and code == 0:
        sys.stderr.write(
            "error: an exception in a background thread or a finalizer outside the tests:\n  "
            + "\n  ".join(_THREAD_ERRORS)
            + "\n"
        )
        code = 1
    if "psycopg_binary" not in sys.modules or os.environ.get("JAAS_TEST_NORMAL_EXIT"):
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
