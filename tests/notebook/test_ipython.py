"""In IPython: a jaas error prints its message (and caret), not pages of parser frames;
the exposure gets its HTML formatter."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaas.notebook import setup


@pytest.fixture(scope="module")
def shell():  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    assert setup(sh)
    yield sh
    InteractiveShell.clear_instance()


def test_bad_selection_prints_message_caret_and_argument(
    shell,
    sim_dir: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    shell.run_cell(f"import jaas\nds = jaas.open({str(sim_dir)!r})")
    capsys.readouterr()
    shell.run_cell('ds.coincidence(prompt="E > 1 MeV", delayed="E >> 2", dt="1 ms")')
    out = capsys.readouterr()
    text = out.out + out.err
    assert "SelectionError (in argument delayed)" in text and "^" in text
    assert "Traceback" not in text and "_parser.py" not in text
    shell.run_cell('ds.ibd(dr_max="2 MeV")')  # a ConfigError/SelectionError: one line too
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and "Error" in out.out + out.err


def test_exposure_html_formatter(shell, ibd_result) -> None:  # type: ignore[no-untyped-def]
    html = shell.display_formatter.formatters["text/html"](ibd_result.exposure)
    assert "<table>" in html and "livetime" in html
