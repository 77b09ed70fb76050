"""Real XRootD servers for tests: one per site, inside a private network namespace.

The namespace (``ip netns add``) isolates the servers, which bind every address; clients
reach them through ``ip netns exec NAME`` (XRootDStorage's ``prefix``). Servers run as the
``xrootd`` user (they refuse root) with the config template of deploy/xrootd/.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import string
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jaas.transfer.storage import XRootDStorage

FAST = {"XRD_CONNECTIONWINDOW": "1", "XRD_CONNECTIONRETRY": "1", "XRD_REQUESTTIMEOUT": "2"}
TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "xrootd" / "site.cfg.in"


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Namespace:
    def __init__(self) -> None:
        self.name = "jaas-" + "".join(random.choices(string.ascii_lowercase, k=8))
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.prefix = ["ip", "netns", "exec", self.name]
        subprocess.run([*self.prefix, "ip", "link", "set", "lo", "up"], check=True)

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


class Server:
    """One xrootd process for a site; ``kill`` and ``start`` again keep its data."""

    def __init__(self, ns: Namespace, site: str, base: Path) -> None:
        self.ns = ns
        self.site = site
        self.dir = base / site.lower()
        (self.dir / "data").mkdir(parents=True)
        (self.dir / "adm").mkdir()
        shutil.chown(self.dir, "xrootd", "xrootd")
        for p in (self.dir / "data", self.dir / "adm"):
            shutil.chown(p, "xrootd", "xrootd")
        self.port = random.randint(20000, 40000)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        return f"root://127.0.0.1:{self.port}//data"

    def storage(self) -> XRootDStorage:
        return XRootDStorage(self.site, self.root, prefix=self.ns.prefix, timeout=8)

    def start(self) -> None:
        cfg = self.dir / "site.cfg"
        text = string.Template(TEMPLATE.read_text()).substitute(
            port=self.port, localroot=self.dir, adminpath=self.dir / "adm"
        )
        cfg.write_text(text)
        log = self.dir / "xrootd.log"
        self.proc = subprocess.Popen(
            [*self.ns.prefix, "xrootd", "-R", "xrootd", "-c", str(cfg), "-l", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(
                [*self.ns.prefix, "xrdfs", f"127.0.0.1:{self.port}", "stat", "/data"],
                capture_output=True,
                check=False,
                env={**os.environ, **FAST},
            )
            if done.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"xrootd for {self.site} exited; see {log}")
            time.sleep(0.05)
        raise RuntimeError(f"xrootd for {self.site} did not answer; see {log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def xrootd_sites() -> Iterator[dict[str, Server]]:
    """Servers CENTRAL, CNAF, JINR, IN2P3, started; stopped and removed after the test."""
    if shutil.which("xrootd") is None or shutil.which("xrdcp") is None:
        _need("xrootd/xrdcp not found (install them with: bash scripts/ensure-system-packages)")
    if os.geteuid() != 0:
        _need("real XRootD tests need root for network namespaces and the xrootd user switch")
    ns = Namespace()
    base = Path(tempfile.mkdtemp(prefix="jaas-xrd-"))
    base.chmod(0o755)
    servers: dict[str, Server] = {}
    try:
        for site in ("CENTRAL", "CNAF", "JINR", "IN2P3"):
            servers[site] = Server(ns, site, base)
            servers[site].start()
        yield servers
    finally:
        for s in servers.values():
            s.kill()
        ns.close()
        shutil.rmtree(base, ignore_errors=True)
