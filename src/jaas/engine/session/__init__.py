"""The user session: datasets, column cache, analysis, backends, results, plots, truth.

Top layer of the engine: builds queries from text (``lang``) and runs them with the
core (``core``) through a backend.
"""
