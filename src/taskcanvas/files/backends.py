"""Which blob store the settings ask for: ``files_url`` unset → ``files/`` in the data directory;
``s3://bucket/prefix`` → :class:`~taskcanvas.files.s3.S3BlobStore`; a path or ``file://`` URL → a
:class:`~taskcanvas.files.blobs.LocalBlobStore` there."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from taskcanvas.config import ConfigError, Settings
from taskcanvas.files.blobs import BlobStore, LocalBlobStore
from taskcanvas.files.errors import FileStoreError

__all__ = ["blob_store"]


def blob_store(settings: Settings) -> BlobStore:
    """The blob store of ``settings``; :class:`ConfigError` for a URL it cannot use."""
    url = settings.files_url
    if not url:
        return LocalBlobStore(settings.data_dir / "files")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from taskcanvas.files.s3 import S3BlobStore  # boto3 loads only when S3 is asked for

        try:
            return S3BlobStore.from_url(url, settings.env)
        except FileStoreError as e:
            raise ConfigError(f"TASKCANVAS_FILES_URL / [files] url: {e}") from None
    if parts.scheme == "file":
        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        raise ConfigError(f"TASKCANVAS_FILES_URL / [files] url: {url!r} is not s3://BUCKET[/PREFIX], "
                          "file:///DIR or a directory")
    return LocalBlobStore(Path(url).expanduser())
