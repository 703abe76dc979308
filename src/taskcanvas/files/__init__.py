"""Files: what a run is given (``sys.files``, file form fields) and what it makes (documents,
spreadsheets, downloads), kept in a blob store that components find in ``ctx.services["files"]``."""

from taskcanvas.files.blobs import Blob, BlobNotFound, BlobStore, LocalBlobStore

__all__ = ["Blob", "BlobNotFound", "BlobStore", "LocalBlobStore"]
