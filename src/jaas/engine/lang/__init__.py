"""The selection language: lexer, parser, typed expression trees (no numba, no I/O).

Bottom layer of the engine: imports nothing else of ``jaas.engine``.
"""
