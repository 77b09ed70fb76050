"""The rules of tests/conftest.py, checked on small throw-away test suites in a subprocess:
no silent skip under CI=true, and the exit status keeps every failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
import tests.conftest as jaas_conftest
from tests.conftest import (  # noqa: F401
    pytest_cmdline_main,
    pytest_configure,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

jaas_conftest.SKIP_ALLOWED["test_allowed.py::test_may_skip"] = "a reason"
"""


def _pytest(folder: Path, *, ci: bool, extra_conftest: str = "", **files: str) -> str:
    (folder / "conftest.py").write_text(CONFTEST + extra_conftest)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "JAAS_TEST_NORMAL_EXIT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if ci:
        env["CI"] = "true"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return f"{out.returncode}\n{out.stdout}{out.stderr}"


SKIPS = {
    "test_skips": "import pytest\n\ndef test_needs_x():\n    pytest.skip('x is not installed')\n",
    "test_allowed": "import pytest\n\ndef test_may_skip():\n    pytest.skip('fine here')\n",
    "test_xfail": "import pytest\n\n@pytest.mark.xfail(strict=True)\ndef test_known():\n"
    "    assert False\n",
}


def test_skips_fail_under_ci_unless_allowed(tmp_path: Path) -> None:
    out = _pytest(tmp_path, ci=True, **SKIPS)
    assert out.startswith("1\n"), out
    assert "skipped under CI=true" in out and "x is not installed" in out
    assert "SKIP_ALLOWED" in out
    assert "FAILED test_skips.py::test_needs_x" in out
    assert "SKIPPED" in out and "test_allowed.py" in out  # the allowed one still skips
    assert "XFAIL" in out and "test_xfail.py::test_known" in out


def test_skips_are_skips_outside_ci(tmp_path: Path) -> None:
    out = _pytest(tmp_path, ci=False, **SKIPS)
    assert out.startswith("0\n"), out
    assert "2 skipped" in out and "1 xfailed" in out


def test_a_module_that_skips_fails_under_ci(tmp_path: Path) -> None:
    body = "import pytest\npytest.importorskip('no_such_module_jaas')\n\ndef test_a():\n    pass\n"
    out = _pytest(tmp_path, ci=True, test_module_skip=body)
    assert not out.startswith("0\n"), out
    assert "skipped under CI=true" in out and "no_such_module_jaas" in out
    assert "1 skipped" in _pytest(tmp_path, ci=False)  # exit 5: nothing ran


def test_a_failing_test_keeps_its_status_with_the_fast_exit(tmp_path: Path) -> None:
    # psycopg's binary wheel loaded: the run leaves with os._exit, with pytest's status
    body = "import psycopg\n\ndef test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n"
    out = _pytest(tmp_path, ci=False, test_pg=body)
    assert out.startswith("1\n"), out
    assert "1 failed, 1 passed" in out


def test_errors_after_the_tests_fail_the_run(tmp_path: Path) -> None:
    teardown = (
        "import psycopg\nimport pytest\n\n@pytest.fixture(scope='session')\ndef res():\n"
        "    yield 1\n    raise RuntimeError('teardown broke')\n\n"
        "def test_uses(res):\n    assert res == 1\n"
    )
    out = _pytest(tmp_path, ci=False, test_teardown=teardown)
    assert not out.startswith("0\n"), out
    assert "teardown broke" in out


def test_a_thread_dying_after_the_session_fails_the_run(tmp_path: Path) -> None:
    late = (
        "\nimport threading\n\n"
        "def pytest_unconfigure(config):\n"
        "    def boom():\n        raise ValueError('late thread error')\n"
        "    t = threading.Thread(target=boom, name='late')\n    t.start()\n    t.join()\n"
    )
    out = _pytest(tmp_path, ci=False, extra_conftest=late, test_ok="def test_ok():\n    pass\n")
    assert out.startswith("1\n"), out
    assert "late thread error" in out


def test_a_thread_dying_during_a_test_fails_that_test(tmp_path: Path) -> None:
    body = (
        "import threading\n\ndef test_thread():\n"
        "    def boom():\n        raise ValueError('thread error in test')\n"
        "    t = threading.Thread(target=boom)\n    t.start()\n    t.join()\n"
    )
    out = _pytest(tmp_path, ci=False, test_thread=body)
    assert out.startswith("1\n"), out
    assert "thread error in test" in out


def test_testdata_is_found_offline() -> None:
    import skhep_testdata

    from tests.conftest import testdata_dirs

    dirs = testdata_dirs(ROOT)
    if not dirs:  # outside the shared layout: the variable must name the directory
        assert not os.environ.get("JAAS_TESTDATA"), "JAAS_TESTDATA names no directory"
        return
    path = Path(skhep_testdata.data_path("uproot-Zmumu.root"))
    assert path.is_file() and path.parent in dirs
    assert os.environ["JAAS_TESTDATA"]
