"""The pure correlation core: query spec types, numba kernels, exact partitioning.

Middle layer: may import ``jaas.engine.lang``, never ``jaas.engine.session``; no I/O and
no hidden state (memos are objects passed in by their owner).
"""
