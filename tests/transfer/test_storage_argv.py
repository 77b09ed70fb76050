"""Tokens stay out of every command line (``/proc/PID/cmdline``, what ``ps`` shows).

Real XRootD servers with the SciTokens plugin check the tokens; a watcher thread reads the
command line of every process while the storage operations run.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from jaas.transfer.storage import READ, XRootDStorage
from jaas.transfer.tokens import TokenCache, TokenIssuer

from .xrd import ISSUER, Server
from .xrd import token_sites as token_sites

pytestmark = pytest.mark.slow

Sites = tuple[dict[str, Server], bytes]


class Watcher:
    """Reads every process's command line in a loop until stopped."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.leaks: list[str] = []
        self.tools: set[str] = set()
        self.lists: list[tuple[int, int]] = []  # (mode of the --infiles list, of its dir)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                except OSError:
                    continue
                self._look(argv)

    def _look(self, argv: list[str]) -> None:
        tool = next((a for a in argv if a in ("xrdfs", "xrdcp")), None)
        if tool is None:
            return
        self.tools.add(tool)
        line = " ".join(argv)
        self.leaks += [line for s in self.secrets if s in line]
        if "--infiles" in argv:
            listed = Path(argv[argv.index("--infiles") + 1])
            with suppress(FileNotFoundError):
                self.lists.append((listed.stat().st_mode, listed.parent.stat().st_mode))

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)


def _repeat(op: Callable[[], object], n: int = 4) -> None:
    for _ in range(n):
        op()
        time.sleep(0.02)


def test_no_command_line_holds_a_token_while_storage_operations_run(
    token_sites: Sites, tmp_path: Path
) -> None:
    servers, key = token_sites
    tokens = TokenCache(TokenIssuer(ISSUER, key, algorithm="ES256", lifetime=600.0, key_id="k1"))
    central: XRootDStorage = servers["CENTRAL"].storage(tokens)
    local = tmp_path / "big.raw"
    local.write_bytes(os.urandom(8_000_000))
    central.upload(local, "raw/run7/big.raw")  # setup: the write token is still in argv here
    secrets = [tokens("CENTRAL", READ), tokens("CENTRAL", "storage.modify")]
    got = tmp_path / "got.raw"
    with Watcher(secrets).running() as seen:
        _repeat(lambda: central.stat("raw/run7/big.raw"))
        _repeat(lambda: central.checksum("raw/run7/big.raw"))
        _repeat(lambda: central.download("raw/run7/big.raw", got))
        central.delete("raw/run7/big.raw")
    assert seen.tools == {"xrdfs", "xrdcp"}  # the watcher did see the tools run
    assert seen.leaks == []
    assert got.read_bytes() == local.read_bytes()
    assert central.stat("raw/run7/big.raw") is None  # the delete was authorised and done
    assert seen.lists, "the watcher saw no --infiles list"
    for mode, parent in seen.lists:
        assert stat.S_IMODE(mode) == 0o600 and stat.S_IMODE(parent) == 0o700
    assert not [p for p in Path("/tmp").glob("jaas-xrdcp-*") if p.owner() == "root"]


def test_a_third_party_copy_keeps_the_source_token_out_of_argv(
    token_sites: Sites, tmp_path: Path
) -> None:
    servers, key = token_sites
    tokens = TokenCache(TokenIssuer(ISSUER, key, algorithm="ES256", lifetime=600.0, key_id="k1"))
    central, cnaf = servers["CENTRAL"].storage(tokens), servers["CNAF"].storage(tokens)
    local = tmp_path / "f.raw"
    local.write_bytes(os.urandom(20_000_000))
    central.upload(local, "raw/run8/f.raw")
    with Watcher([tokens("CENTRAL", READ)]).running() as seen:
        cnaf.third_party_copy(central, "raw/run8/f.raw")  # once: a second one would overwrite
    assert "xrdcp" in seen.tools
    assert seen.leaks == []
    assert cnaf.checksum("raw/run8/f.raw") == central.checksum("raw/run8/f.raw")
