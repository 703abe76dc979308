"""Files: what a run is given (``sys.files``, file form fields) and what it makes (documents,
spreadsheets, downloads), kept in a blob store that components find in ``ctx.services["files"]``.

Stores: :class:`LocalBlobStore` (a directory, the default) and ``files.s3.S3BlobStore``, chosen by
:func:`blob_store` from the settings. File values (ragflow's ``upload_info`` dicts) are made by
:func:`file_value` / :func:`store_file` and read for components by :class:`FileReader`.
"""

from taskcanvas.files.backends import blob_store
from taskcanvas.files.blobs import Blob, BlobNotFound, BlobStore, LocalBlobStore
from taskcanvas.files.errors import FileError, FileStoreError
from taskcanvas.files.values import DEFAULT_MAX_BYTES, FileReader, FileValue, file_value, reader_of, store_file

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Blob",
    "BlobNotFound",
    "BlobStore",
    "FileError",
    "FileReader",
    "FileStoreError",
    "FileValue",
    "LocalBlobStore",
    "blob_store",
    "file_value",
    "reader_of",
    "store_file",
]
