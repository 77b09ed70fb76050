"""Real XRootD servers for tests: one per site, inside a private network namespace.

The namespace (``ip netns add``) isolates the servers, which bind every address; clients
reach them through ``ip netns exec NAME`` (XRootDStorage's ``prefix``). Servers run as the
``xrootd`` user (they refuse root) with the config template of deploy/xrootd/.
"""

from __future__ import annotations

import ctypes
import os
import random
import re
import shutil
import signal
import string
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from jaas.transfer.storage import TokenSource, XRootDStorage

FAST = {"XRD_CONNECTIONWINDOW": "1", "XRD_CONNECTIONRETRY": "1", "XRD_REQUESTTIMEOUT": "2"}
TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "xrootd" / "site.cfg.in"


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _need_servers() -> None:
    if shutil.which("xrootd") is None or shutil.which("xrdcp") is None:
        _need("xrootd/xrdcp not found (install them with: bash scripts/ensure-system-packages)")
    if os.geteuid() != 0:
        _need("real XRootD tests need root for network namespaces and the xrootd user switch")


def _stop(servers: Iterable[Server], space: Namespace | SiteNetwork, base: Path) -> None:
    """Kill the servers, remove their namespace(s) and files."""
    for srv in servers:
        srv.kill()
    space.close()
    shutil.rmtree(base, ignore_errors=True)


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
        self.extra = ""  # more config lines (e.g. the SciTokens authorisation)
        self.env: dict[str, str] = {}

    @property
    def root(self) -> str:
        return f"root://127.0.0.1:{self.port}//data"

    def storage(self, tokens: TokenSource | None = None) -> XRootDStorage:
        return XRootDStorage(self.site, self.root, prefix=self.ns.prefix, timeout=8, tokens=tokens)

    def start(self) -> None:
        cfg = self.dir / "site.cfg"
        text = string.Template(TEMPLATE.read_text()).substitute(
            port=self.port, localroot=self.dir, adminpath=self.dir / "adm"
        )
        cfg.write_text(text + self.extra)
        log = self.dir / "xrootd.log"
        self.proc = subprocess.Popen(
            [*self.ns.prefix, "xrootd", "-R", "xrootd", "-c", str(cfg), "-l", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **FAST, **self.env},  # its third-party-copy clients give up soon
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(
                self._probe(),
                capture_output=True,
                check=False,
                env={**os.environ, **FAST},
            )
            if done.returncode == 0 or b"permission denied" in done.stderr:  # up (tokens)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"xrootd for {self.site} exited; see {log}")
            time.sleep(0.05)
        raise RuntimeError(f"xrootd for {self.site} did not answer; see {log}")

    def _probe(self) -> list[str]:
        return [*self.ns.prefix, "xrdfs", f"127.0.0.1:{self.port}", "stat", "/data"]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def xrootd_sites() -> Iterator[dict[str, Server]]:
    """Servers CENTRAL, CNAF, JINR, IN2P3, started; stopped and removed after the test."""
    _need_servers()
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
        _stop(servers.values(), ns, base)


class SiteNetwork:
    """One network namespace per site, joined by a bridge in a hub namespace.

    Clients run in the hub (``prefix``). ``cut(a, b)`` makes ``a``'s address unreachable
    from ``b``'s namespace: ``b`` can no longer pull from ``a`` (a third-party copy
    ``a -> b`` fails) while every other link still works.
    """

    def __init__(self, sites: list[str]) -> None:
        tag = "".join(random.choices(string.ascii_lowercase, k=5))
        self.hub = Namespace()
        self.prefix = self.hub.prefix
        self.spaces: dict[str, Namespace] = {}
        self.addr: dict[str, str] = {}
        run = lambda *a: subprocess.run(list(a), check=True)  # noqa: E731
        run(*self.prefix, "ip", "link", "add", "br0", "type", "bridge")
        run(*self.prefix, "ip", "addr", "add", "10.77.0.254/24", "dev", "br0")
        run(*self.prefix, "ip", "link", "set", "br0", "up")
        for i, site in enumerate(sites, start=1):
            ns = Namespace()
            self.spaces[site] = ns
            self.addr[site] = f"10.77.0.{i}"
            veth = f"v{tag}{i}"
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
            run("ip", "link", "set", veth, "netns", self.hub.name)
            run(*self.prefix, "ip", "link", "set", veth, "master", "br0")
            run(*self.prefix, "ip", "link", "set", veth, "up")
            run(*ns.prefix, "ip", "addr", "add", f"{self.addr[site]}/24", "dev", "eth0")
            run(*ns.prefix, "ip", "link", "set", "eth0", "up")

    def cut(self, src: str, dst: str, port: int = 1094) -> None:
        """A firewall rule in ``dst``'s namespace drops its packets to ``src``'s port."""
        if shutil.which("nft") is None:
            _need("nft not found (install nftables with: bash scripts/ensure-system-packages)")
        rules = (
            "table inet jaascut {\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            f"    ip daddr {self.addr[src]} tcp dport {port} counter drop\n"
            "  }\n"
            "}\n"
        )
        subprocess.run(
            [*self.spaces[dst].prefix, "nft", "-f", "-"], input=rules.encode(), check=True
        )

    def dropped(self, dst: str) -> int:
        """Packets the cut rule in ``dst``'s namespace has dropped."""
        out = subprocess.run(
            [*self.spaces[dst].prefix, "nft", "list", "table", "inet", "jaascut"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sum(int(w) for w in re.findall(r"counter packets (\d+)", out))

    def close(self) -> None:
        for ns in self.spaces.values():
            ns.close()
        self.hub.close()


class SiteServer(Server):
    """A server in its site's own namespace, reached at the site's address."""

    def __init__(self, net: SiteNetwork, site: str, base: Path) -> None:
        super().__init__(net.spaces[site], site, base)
        self.net = net
        self.port = 1094

    @property
    def host(self) -> str:
        return self.net.addr[self.site]

    @property
    def root(self) -> str:
        return f"root://{self.host}:{self.port}//data"

    def storage(self) -> XRootDStorage:
        return XRootDStorage(self.site, self.root, prefix=self.net.prefix, timeout=8)

    def _probe(self) -> list[str]:
        return [*self.net.prefix, "xrdfs", f"{self.host}:{self.port}", "stat", "/data"]


@pytest.fixture
def xrootd_network() -> Iterator[tuple[SiteNetwork, dict[str, SiteServer]]]:
    """CENTRAL, CNAF, JINR, IN2P3 each in its own namespace behind one bridge."""
    _need_servers()
    sites = ["CENTRAL", "CNAF", "JINR", "IN2P3"]
    net = SiteNetwork(sites)
    base = Path(tempfile.mkdtemp(prefix="jaas-xrdnet-"))
    base.chmod(0o755)
    servers: dict[str, SiteServer] = {}
    try:
        for site in sites:
            servers[site] = SiteServer(net, site, base)
            servers[site].start()
        yield net, servers
    finally:
        _stop(servers.values(), net, base)


ISSUER = "https://iam.jaas.test"  # never fetched: its key is put in the plugin's key cache


def trust_issuer(cache_home: Path, issuer: str, key_id: str, public_pem: bytes) -> None:
    """Put an EC public key in the SciTokens key cache under ``cache_home`` (XDG_CACHE_HOME).

    The servers' plugin then verifies tokens of ``issuer`` without fetching its JWKS over
    HTTPS (``scitoken_store_public_ec_key`` of libSciTokens, as its tools do).
    """
    lib = ctypes.CDLL("libSciTokens.so.0")
    err = ctypes.c_char_p()
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    try:
        rc = lib.scitoken_store_public_ec_key(
            issuer.encode(), key_id.encode(), public_pem, ctypes.byref(err)
        )
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old
    if rc != 0:
        raise RuntimeError(f"scitokens key cache: {err.value!r}")
    subprocess.run(["chown", "-R", "xrootd:xrootd", str(cache_home)], check=True)


@pytest.fixture
def token_sites() -> Iterator[tuple[dict[str, Server], bytes]]:
    """CENTRAL and CNAF servers that authorise with SciTokens (audience = the site name).

    Yields the servers and the issuer's EC private key (PEM) trusted by both.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    _need_servers()
    if not Path("/usr/lib/x86_64-linux-gnu/libXrdAccSciTokens-5.so").exists():
        _need("the SciTokens plugin is missing (Debian xrootd-scitokens-plugins)")
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ns = Namespace()
    base = Path(tempfile.mkdtemp(prefix="jaas-xrdtok-"))
    base.chmod(0o755)
    cache = base / "cache"
    cache.mkdir()
    trust_issuer(cache, ISSUER, "k1", public)
    servers: dict[str, Server] = {}
    try:
        for site in ("CENTRAL", "CNAF"):
            srv = Server(ns, site, base)
            conf = srv.dir / "scitokens.cfg"
            conf.write_text(
                f"[Global]\naudience = {site}\n\n"
                f"[Issuer jaas]\nissuer = {ISSUER}\nbase_path = /data\n"
            )
            srv.extra = f"ofs.authorize 1\nofs.authlib libXrdAccSciTokens.so config={conf}\n"
            srv.env = {"XDG_CACHE_HOME": str(cache)}
            servers[site] = srv
            srv.start()
        yield servers, private
    finally:
        _stop(servers.values(), ns, base)
