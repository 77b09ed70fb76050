"""One small storage interface (stat, checksum, copy, third-party copy, delete).

``LocalStorage`` keeps files under a directory; ``XRootDStorage`` talks to an XRootD server
with ``xrdfs``/``xrdcp`` run as argument lists (never a shell string). Names inside a site
are *logical file names* (``raw/run12/run12.000.raw``); every failure is a TransferFailure
with an error class.

Tokens travel in the ``?authz=`` CGI of a URL (the server's SciTokens plugin reads them
there, one token per endpoint), but never on a command line, which any local user can read
in ``ps``: ``xrdfs`` gets its command on stdin (interactive mode) and ``xrdcp`` its source
URL from an ``--infiles`` list, a 0600 file in a private directory removed after the call.
xrdcp takes the destination only from argv, so an upload or a third-party copy to a site
with tokens still shows that site's write token (see ``_dest``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import quote, urlencode

from jaas.transfer.checksum import adler32_file, canonical_adler32
from jaas.transfer.config import Site
from jaas.transfer.errors import TransferFailure, classify_message

__all__ = ["LocalStorage", "Storage", "XRootDStorage", "copy_file", "open_storage"]

TokenSource = Callable[[str, str], str]  # (site, scopes separated by spaces) -> bearer token

READ = "storage.read"
WRITE = "storage.read storage.create"  # xrdcp stats the target before it creates it
MODIFY = "storage.modify"


class Storage(Protocol):
    site: str

    def url(self, lfn: str) -> str: ...
    def stat(self, lfn: str) -> int | None: ...
    def checksum(self, lfn: str) -> str: ...
    def upload(self, local: Path, lfn: str) -> None: ...
    def download(self, lfn: str, local: Path) -> None: ...
    def delete(self, lfn: str) -> None: ...


def _check_lfn(lfn: str) -> str:
    p = PurePosixPath(lfn)
    if p.is_absolute() or ".." in p.parts or not p.parts or any(c.isspace() for c in lfn):
        raise TransferFailure(f"bad logical file name {lfn!r}", "not_found")
    return str(p)


@contextlib.contextmanager
def _private_list(lines: Sequence[str]) -> Iterator[Path]:
    """A file holding ``lines`` readable by this user only, removed with its directory."""
    tmp = tempfile.mkdtemp(prefix="jaas-xrdcp-")  # mode 0700
    try:
        path = Path(tmp) / "urls"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class LocalStorage:
    """A site that is a local directory."""

    def __init__(self, site: str, root: str | os.PathLike[str]) -> None:
        self.site = site
        self.root = Path(root)

    def path(self, lfn: str) -> Path:
        return self.root / _check_lfn(lfn)

    def url(self, lfn: str) -> str:
        return str(self.path(lfn).absolute())

    def stat(self, lfn: str) -> int | None:
        try:
            return self.path(lfn).stat().st_size
        except FileNotFoundError:
            return None

    def checksum(self, lfn: str) -> str:
        try:
            return adler32_file(self.path(lfn))
        except FileNotFoundError:
            raise TransferFailure(f"{self.site}:{lfn}: no such file", "not_found") from None

    def upload(self, local: Path, lfn: str) -> None:
        dst = self.path(lfn)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.part")
            shutil.copyfile(local, tmp)
            os.replace(tmp, dst)
        except FileNotFoundError:
            raise TransferFailure(f"{local}: no such file", "not_found") from None
        except OSError as exc:
            raise TransferFailure(
                f"{self.site}:{lfn}: {exc.strerror or exc}", classify_message(str(exc))
            ) from None

    def download(self, lfn: str, local: Path) -> None:
        try:
            shutil.copyfile(self.path(lfn), local)
        except FileNotFoundError:
            raise TransferFailure(f"{self.site}:{lfn}: no such file", "not_found") from None

    def delete(self, lfn: str) -> None:
        self.path(lfn).unlink(missing_ok=True)


class XRootDStorage:
    """A site served by XRootD at ``root://host:port//base``; tokens from ``tokens`` if given."""

    def __init__(
        self,
        site: str,
        root: str,
        *,
        tokens: TokenSource | None = None,
        timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        if not root.startswith("root://"):
            raise TransferFailure(f"{site}: {root!r} is not a root:// URL", "permission")
        rest = root[len("root://") :]
        host, _, base = rest.partition("/")
        self.site = site
        self.host = host
        self.base = "/" + base.lstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.env = dict(env or {})
        self.prefix = list(prefix)  # e.g. ["ip", "netns", "exec", NAME] to reach a namespace

    def _path(self, lfn: str) -> str:
        return str(PurePosixPath(self.base) / _check_lfn(lfn))

    def url(self, lfn: str) -> str:
        return f"root://{self.host}/{self._path(lfn)}"

    def _authz(self, scope: str) -> str:
        """The ``?authz=`` opaque part carrying a token for ``scope`` ('' without tokens).

        The SciTokens plugin of the server reads the token from this CGI on root://.
        """
        if self.tokens is None:
            return ""
        return "?" + urlencode(
            {"authz": f"Bearer {self.tokens(self.site, scope)}"}, quote_via=quote
        )

    def _tpath(self, lfn: str, scope: str) -> str:
        return self._path(lfn) + self._authz(scope)

    def _turl(self, lfn: str, scope: str) -> str:
        return self.url(lfn) + self._authz(scope)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "XRD_REQUESTTIMEOUT": str(int(self.timeout)),
            "XRD_CONNECTIONWINDOW": str(max(1, int(self.timeout) // 4)),
            "XRD_CONNECTIONRETRY": "1",
            **self.env,
        }

    def _refusal(self, msg: str, src: XRootDStorage | None = None) -> str:
        """The site that refused a token in ``msg`` (the source of a third-party copy or us)."""
        low = msg.lower()
        if src is not None and "(destination)" not in low and "unable to create" not in low:
            return src.site
        return self.site

    def _run(
        self,
        args: list[str],
        what: str,
        src: XRootDStorage | None = None,
        stdin: str | None = None,
    ) -> str:
        try:
            done = subprocess.run(
                [*self.prefix, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout + 5,
                env=self._env(),
                check=False,
            )
        except FileNotFoundError:
            raise TransferFailure(
                f"{args[0]} is not installed (Debian xrootd-client)", "permission"
            ) from None
        except subprocess.TimeoutExpired:
            raise TransferFailure(f"{self.site}: {what} timed out", "timeout") from None
        # interactive xrdfs exits 0 after a failed command: its error is on stderr
        failed = stdin is not None and ("[ERROR]" in done.stderr or "[FATAL]" in done.stderr)
        if done.returncode != 0 or failed:
            text = (done.stderr or done.stdout).strip().splitlines()
            msg = text[-1] if text else f"exit status {done.returncode}"
            cls = classify_message(msg)
            tokens = self.tokens is not None or (src is not None and src.tokens is not None)
            if tokens and cls == "permission":  # the server's authorisation said no
                who = self._refusal(msg, src)
                raise TransferFailure(f"token refused by {who}: {what}: {msg}", "token_refused")
            raise TransferFailure(f"{self.site}: {what}: {msg}", cls)
        return done.stdout

    def _fs(self, command: str, lfn: str, scope: str, what: str) -> str:
        """``xrdfs HOST`` with ``command PATH?authz=...`` on stdin, out of every argv."""
        return self._run(["xrdfs", self.host], what, stdin=f"{command} {self._tpath(lfn, scope)}\n")

    def _copy(
        self, options: list[str], source: str, dest: str, what: str, src: XRootDStorage | None
    ) -> None:
        """``xrdcp OPTIONS --infiles LIST DEST`` with the source URL in the private LIST."""
        with _private_list([source]) as urls:
            self._run(["xrdcp", *options, "--infiles", str(urls), dest], what, src)

    def stat(self, lfn: str) -> int | None:
        try:
            out = self._fs("stat", lfn, READ, "stat")
        except TransferFailure as exc:
            if exc.error_class == "not_found":
                return None
            raise
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Size":
                return int(value.strip())
        return None

    def checksum(self, lfn: str) -> str:
        out = self._fs("query checksum", lfn, READ, "checksum")
        answer = [ln.split() for ln in out.splitlines() if ln.lower().startswith("adler32 ")]
        parts = answer[-1] if answer else []
        if len(parts) < 2:
            raise TransferFailure(f"{self.site}: unexpected checksum answer {out.strip()!r}")
        return canonical_adler32(parts[1])

    def _dest(self, lfn: str) -> str:
        """The destination URL of an xrdcp to us, with our write token.

        xrdcp reads its destination from argv only (``--infiles`` lists sources), and the
        SciTokens plugin of the server reads a token from the URL CGI or from a ``ztn``
        login (which needs TLS and carries one token for every endpoint of the process),
        so this one token is still visible in ``ps`` while the copy runs.
        """
        return self._turl(lfn, WRITE)

    def upload(self, local: Path, lfn: str) -> None:
        opts = ["--nopbar", "--force", "--posc", "--path"]
        self._copy(opts, str(local.absolute()), self._dest(lfn), "upload", None)

    def download(self, lfn: str, local: Path) -> None:
        self._copy(["--nopbar", "--force"], self._turl(lfn, READ), str(local), "download", None)

    def third_party_copy(self, src: XRootDStorage, lfn: str) -> None:
        """Server-to-server copy from ``src`` (``xrdcp --tpc only``)."""
        opts = ["--nopbar", "--force", "--tpc", "only", "--path"]
        self._copy(opts, src._turl(lfn, READ), self._dest(lfn), "third-party copy", src)

    def delete(self, lfn: str) -> None:
        try:
            self._fs("rm", lfn, MODIFY, "delete")
        except TransferFailure as exc:
            if exc.error_class != "not_found":
                raise


def copy_file(src: Storage, dst: Storage, lfn: str) -> None:
    """Copy ``lfn`` from ``src`` to ``dst``: third-party between XRootD sites, else via a file."""
    if isinstance(src, XRootDStorage) and isinstance(dst, XRootDStorage):
        dst.third_party_copy(src, lfn)
        return
    if isinstance(src, LocalStorage):
        path = src.path(lfn)
        if not path.is_file():
            raise TransferFailure(f"{src.site}:{lfn}: no such file", "not_found")
        dst.upload(path, lfn)
        return
    with tempfile.TemporaryDirectory(prefix="jaas-transfer-") as tmp:
        local = Path(tmp) / PurePosixPath(lfn).name
        src.download(lfn, local)
        dst.upload(local, lfn)


def open_storage(site: Site, tokens: TokenSource | None = None) -> Storage:
    """The storage implementation for a site's root URL."""
    if site.scheme == "root":
        return XRootDStorage(site.name, site.root, tokens=tokens)
    if site.scheme == "https":
        raise TransferFailure(f"{site.name}: https storage is not supported yet", "permission")
    return LocalStorage(site.name, site.root)
