"""Where a dataset comes from: :class:`Source` (page, citation, notes) and its :class:`Archive` files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a dataset.

    ``url`` is a stable direct download (None when the file is only on Google Drive, Baidu Pan
    or similar, which need a browser). ``sha256`` is the published or independently recorded
    hash, ``sha256_source`` says where it was found. ``include`` limits extraction to members
    under these path prefixes (inside the archive).
    """

    filename: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_source: str = ""
    include: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()  # browser-only links (Google Drive, Baidu Pan with code)


@dataclass(frozen=True)
class Source:
    """Where a dataset is published: official page, paper, archives."""

    page: str
    citation: str
    archives: tuple[Archive, ...] = ()
    notes: str = ""

    def describe(self) -> str:
        """One line for :attr:`DatasetSpec.source`."""
        direct = [a.url for a in self.archives if a.url]
        where = direct[0] if direct else self.page
        return f"{self.citation}. {where}"
