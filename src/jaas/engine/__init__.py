"""Analysis engine: selections, coincidences, vetoes and exposure over index columns.

Layers, imports pointing one way (``tests/engine/test_layers.py`` enforces it):

* ``jaas.engine.lang``: the selection language;
* ``jaas.engine.core``: the pure correlation core (spec types, numba kernels, partitions);
* ``jaas.engine.session``: datasets, cache, analysis, backends, results, plots, truth.

The flat modules (``jaas.engine.analysis``, ``jaas.engine.dataset`` ...) re-export the
public names of their layer's module under the names used before the split.
"""
