"""A fresh process loads only what it uses: `import jaas` and `jaas --help` stay light,
and a query's column reading (threads, one copy) gives the same arrays as pyarrow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa

from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import open_dataset
from jaas.formats.index import read_index, write_index
from jaas.formats.schema import INDEX_SCHEMA

HEAVY = (
    "pandas",
    "matplotlib",
    "hist",
    "iminuit",
    "sqlalchemy",
    "uproot",
    "dask",
    "numba",
    "scipy",
)


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(out.split())


def test_import_jaas_loads_no_heavy_module() -> None:
    loaded = _loaded_after("import jaas")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "numpy" not in loaded and "pyarrow" not in loaded


def test_cli_help_loads_no_heavy_module() -> None:
    loaded = _loaded_after(
        "import contextlib, io\nfrom jaas.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    assert not loaded & {*HEAVY, "numpy", "pyarrow"}, sorted(loaded & {*HEAVY, "numpy", "pyarrow"})


def test_the_query_api_imports_numba_only_when_a_query_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """numba and the kernels (~0.15 s) are imported on the first query, on its warm-up
    thread while the columns are read, not by importing the API."""
    write_index(_table(np.random.default_rng(3), 2000, 0, 0), tmp_path / "f.parquet")
    before = _loaded_after("import jaas, jaas.engine.session.analysis")
    assert "numba" not in before
    after = _loaded_after(
        f"import jaas\nres = jaas.open({str(tmp_path)!r}).coincidence(prompt='E > 0', "
        "delayed='E > 0', dt='1 ms', mode='all')\nassert res.n_pairs > 0"
    )
    assert "numba" in after


def _table(rng: np.random.Generator, n: int, t0: int, file_id: int) -> pa.Table:
    cols = {}
    for fld in INDEX_SCHEMA:
        dtype = np.dtype(fld.type.to_pandas_dtype())
        if dtype == np.bool_:
            cols[fld.name] = rng.random(n) < 0.3
        elif dtype.kind == "f":
            cols[fld.name] = rng.normal(size=n).astype(dtype)
        else:
            cols[fld.name] = rng.integers(0, 100, n).astype(dtype)
    cols["t"] = t0 + np.sort(rng.integers(0, 10**9, n)).astype(np.int64)
    cols["file_id"] = np.full(n, file_id, np.int32)
    cols["run"] = np.ones(n, np.int32)
    return pa.table(cols)


def test_load_equals_pyarrow_concatenation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    # several files, several row groups each, one empty file; columns of every type
    sizes = [5000, 0, 12345, 3]
    for i, n in enumerate(sizes):
        write_index(_table(rng, n, i * 10**10, i), tmp_path / f"f{i}.parquet", row_group_size=4096)
    ds = open_dataset(tmp_path, cache=ColumnCache())
    names = [n for n in INDEX_SCHEMA.names if n != "t"]
    got = ds.load(names)
    paths = [f.path for f in ds.files]
    want = read_index(paths, ["t", *names])
    assert sum(sizes) == len(got["E"])
    for name in names:
        expected = want.column(name).to_numpy()
        assert got[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(got[name], expected, err_msg=name)
