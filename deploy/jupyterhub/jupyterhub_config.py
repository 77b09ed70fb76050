"""JupyterHub for jaas: `jupyterhub -f jupyterhub_config.py` (settings: JAAS_HUB_*).

See docs/jupyter.md and jaas.notebook.hub for every setting.
"""

from jaas.notebook.hub import configure, hub_settings

configure(c, hub_settings())  # type: ignore[name-defined]  # noqa: F821
