"""Getting a folder dataset's files: :class:`FetchMixin` downloads or takes its archives,
extracts them safely and verifies; :class:`FetchResult` is what ``fetch`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llbench.errors import DatasetError
from llbench.io.hashing import sha256_file

from .sources import Archive
from .verification import VerifyReport


@dataclass
class FetchResult:
    """What :meth:`FolderDataset.fetch` did."""

    messages: list[str]
    report: VerifyReport


class FetchMixin:
    """The fetching of :class:`~llbench.datasets.folders.FolderDataset`: downloads, manual steps."""

    # -- fetching --------------------------------------------------------------------------------
    def downloads_dir(self, cache_dir: Path) -> Path:
        return Path(cache_dir) / "downloads" / self.name

    def manual_steps(self, cache_dir: Path) -> str:
        """Exact steps to get the data by hand (printed when no direct download exists)."""
        src = self.source
        lines = [f"{self.name} ({src.citation}) has to be downloaded by hand:"]
        n = 1
        for a in src.archives:
            where = f" from {a.url}" if a.url else f" from the page {src.page}"
            mirrors = f" (links: {'; '.join(a.mirrors)})" if a.mirrors else ""
            check = f", sha256 {a.sha256}" if a.sha256 else ""
            lines.append(f"  {n}. Download {a.filename}{where}{mirrors}{check}.")
            n += 1
        if not src.archives:
            lines.append(f"  {n}. Download it from {src.page}.")
            n += 1
        first = src.archives[0].filename if src.archives else "ARCHIVE"
        dl = self.downloads_dir(cache_dir)
        layout = self.layout or "the layout"
        if first.lower().endswith(
            (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", "ARCHIVE")
        ):
            lines.append(
                f"  {n}. Either run `llbench datasets fetch {self.name} --archive PATH/{first}`, or "
                f"put the file in {dl}/ and run `llbench datasets fetch {self.name}`, or extract "
                f"it yourself so that {self.root} holds {layout}."
            )
        else:
            lines.append(
                f"  {n}. Extract it (e.g. `7z x {first}` or `unrar x {first}`) so that {self.root} "
                f"holds {layout}."
            )
        lines.append(
            f"  {n + 1}. Run `llbench datasets verify {self.name}` to check the images and record "
            "the manifest."
        )
        if src.notes:
            lines.append(f"  Note: {src.notes}")
        return "\n".join(lines)

    def include_member(self, name: str) -> bool:
        """Which archive members to extract (all by default)."""
        prefixes = tuple(p for a in self.source.archives for p in a.include)
        return not prefixes or name.startswith(prefixes)

    def fetch(
        self,
        cache_dir: Path,
        *,
        archive: Path | None = None,
        progress: bool = True,
        timeout: float = 10.0,
        force: bool = False,
    ) -> FetchResult:
        """Download (or take ``archive``), extract safely, prepare and verify; see the module doc."""
        from llbench.io.download import download, safe_extract

        messages: list[str] = []
        hashes: dict[str, str] = {}
        if archive is not None:
            archive = Path(archive).expanduser().resolve()
            if not archive.is_file():
                raise DatasetError(f"archive not found: {archive}")
            hashes[archive.name] = self._check_archive_hash(archive)
            safe_extract(archive, self.root, include=self.include_member)
            messages.append(f"extracted {archive} into {self.root}")
        else:
            counts, _missing, short = self.split_state()
            if counts and len(counts) == len(self.splits) and not short and not force:
                messages.append(f"{self.name} is already in {self.root}; not downloading")
            else:
                if not self.source.archives:
                    raise DatasetError(self.manual_steps(cache_dir))
                dl = self.downloads_dir(cache_dir)
                local: list[Path] = []
                for a in self.source.archives:
                    path = dl / a.filename
                    if path.is_file() and not path.with_name(path.name + ".part").exists():
                        messages.append(f"using {path}")
                    elif a.url:
                        path = download(
                            a.url,
                            path,
                            a.sha256,
                            progress=progress,
                            timeout=timeout,
                            manual=f"Or follow the manual steps:\n{self.manual_steps(cache_dir)}",
                        )
                        messages.append(f"downloaded {a.url} to {path}")
                    else:
                        raise DatasetError(self.manual_steps(cache_dir))
                    local.append(path)
                for a, path in zip(self.source.archives, local, strict=True):
                    hashes[a.filename] = self._check_archive_hash(path, a)
                    safe_extract(path, self.root, include=self.include_member)
                    messages.append(f"extracted {path.name} into {self.root}")
        self.prepare()
        report = self.verify(update=True, archives=hashes)
        return FetchResult(messages, report)

    def _check_archive_hash(self, path: Path, archive: Archive | None = None) -> str:
        if archive is None:
            archive = next((a for a in self.source.archives if a.filename == path.name), None)
        digest = sha256_file(path)
        if archive is not None and archive.sha256 and digest != archive.sha256.lower():
            raise DatasetError(
                f"{path} has sha256 {digest}, but {archive.filename} of {self.name} has "
                f"{archive.sha256} ({archive.sha256_source or self.source.page}); it is a "
                "different or damaged file. Delete it and download it again."
            )
        return digest
