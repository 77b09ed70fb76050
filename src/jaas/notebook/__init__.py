"""jaas in Jupyter: rich HTML, short errors, a cut-flow on data, selection widgets.

``import jaas.notebook`` (or ``%load_ext jaas.notebook``) in an IPython kernel installs
the HTML formatter of the exposure and a handler printing any jaas error as its one-line
message (selection errors with the caret and the argument that held the bad text).
The widget panel needs the ``notebook`` extra (``pip install jaas[notebook]``).
"""

from __future__ import annotations

from typing import Any

from jaas.notebook.cutflow import CutFlow, data_cutflow

__all__ = ["CutFlow", "SelectionPanel", "data_cutflow", "load_ipython_extension", "setup"]


def _show_jaas_error(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> None:
    render = getattr(value, "_render_traceback_", None)
    lines = render() if callable(render) else [f"{etype.__name__}: {value}"]
    print("\n".join(lines))


def setup(shell: Any = None) -> bool:
    """Install the jaas display hooks in an IPython ``shell`` (the running one by default).

    Returns False when not running under IPython.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
        if shell is None:
            return False
    from jaas.engine.core.exposure import Exposure
    from jaas.errors import JaasError
    from jaas.notebook.render import exposure_html

    shell.display_formatter.formatters["text/html"].for_type(Exposure, exposure_html)
    shell.set_custom_exc((JaasError,), _show_jaas_error)
    return True


load_ipython_extension = setup


def __getattr__(name: str) -> object:
    if name == "SelectionPanel":  # ipywidgets loads only when the panel is used
        from jaas.notebook.panel import SelectionPanel

        return SelectionPanel
    raise AttributeError(f"module 'jaas.notebook' has no attribute {name!r}")


setup()
