"""Hand intake's verified, registered central RAW files to keep-up through its drop directory.

``KeepUpDropDir`` is an ingest hook of ``intake_dropbox``: each file is put into the
keep-up drop directory under its own name, written as a hidden ``.NAME.part`` and renamed
(the watcher ignores hidden files), then the completion marker ``NAME.done`` is added, so
``jaas kup watch`` (``jaas.kup.dropdir``) ingests it at its next scan, complete, never half
written. A local central copy is copied (never hard-linked: the verified central replica
must not change if something writes to the keep-up copy); a root:// copy is downloaded
from the central XRootD site. A file already in the drop directory with the same bytes is
left as it is (a retried intake hands over once).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from jaas.transfer.checksum import adler32_file
from jaas.transfer.errors import TransferFailure
from jaas.transfer.storage import XRootDStorage

__all__ = ["KeepUpDropDir"]


class KeepUpDropDir:
    """An intake hook putting each central file into keep-up's ``drop_dir`` with its marker.

    Args:
        drop_dir: the directory ``jaas kup watch STATE DROP_DIR`` polls.
        central: the central XRootD site, to fetch root:// copies from (local paths need none).
        marker: the completion marker suffix keep-up's watcher expects.
    """

    def __init__(
        self,
        drop_dir: str | os.PathLike[str],
        *,
        central: XRootDStorage | None = None,
        marker: str = ".done",
    ) -> None:
        self.drop_dir = Path(drop_dir)
        if not self.drop_dir.is_dir():
            raise TransferFailure(f"{self.drop_dir}: keep-up drop directory does not exist")
        self.central = central
        self.marker = marker
        self.handed: list[Path] = []

    def __call__(self, paths: Sequence[str]) -> None:
        for path in paths:
            self.handed.append(self.hand_over(path))

    def hand_over(self, path: str) -> Path:
        """Put one central file (a local path or a root:// URL) into the drop directory."""
        name = PurePosixPath(path).name
        target = self.drop_dir / name
        part = self.drop_dir / f".{name}.part"
        marker = self.drop_dir / f"{name}{self.marker}"
        if path.startswith("root://"):
            self._fetch(path, part)
        elif target.exists() and adler32_file(target) == adler32_file(Path(path)):
            marker.touch()
            return target
        else:
            self._copy(Path(path), part)
        os.replace(part, target)
        marker.touch()
        return target

    def _copy(self, src: Path, part: Path) -> None:
        try:
            shutil.copyfile(src, part)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise TransferFailure(f"cannot hand {src} to keep-up: {exc.strerror or exc}") from None

    def _fetch(self, url: str, part: Path) -> None:
        if self.central is None:
            raise TransferFailure(f"{url}: no central XRootD site given to fetch it from")
        prefix = self.central.url("x")[:-1]
        if not url.startswith(prefix):
            raise TransferFailure(f"{url} is not at the central site {self.central.site}")
        try:
            self.central.download(url[len(prefix) :], part)
        except TransferFailure:
            part.unlink(missing_ok=True)
            raise
