"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...): ``<prefix><id>`` per blob.

The name and media type travel with the object (``x-amz-meta-filename``, percent-encoded since
S3 metadata is ASCII; ``Content-Type``), so one ``HEAD`` answers :meth:`S3BlobStore.info`.

boto3 runs in worker threads (``asyncio.to_thread``) rather than through aioboto3: boto3 clients
are thread-safe, every call here moves one whole object, and aiobotocore pins exact botocore
releases, which would tie taskcanvas to its release cadence for no gain at this call rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from taskcanvas.files.blobs import Blob, BlobNotFound, guess_mime_type, valid_blob_id
from taskcanvas.files.errors import FileStoreError

__all__ = ["S3BlobStore"]

_T = TypeVar("_T")
_MISSING = {"NoSuchKey", "404", "NotFound"}
_TRUE = {"1", "true", "yes", "on"}


class S3BlobStore:
    """Blobs as objects of one bucket, under an optional key prefix."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 profile: str | None = None, path_style: bool | None = None) -> None:
        import boto3
        from botocore.config import Config

        if not bucket:
            raise FileStoreError("an S3 file store needs a bucket: s3://BUCKET[/PREFIX]")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        # A custom endpoint (MinIO and most other servers) is addressed by path unless told otherwise.
        style = "path" if (path_style if path_style is not None else bool(endpoint_url)) else "auto"
        session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                        aws_session_token=session_token, profile_name=profile)
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region or session.region_name or "us-east-1",
            config=Config(s3={"addressing_style": style}, retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=10, read_timeout=60))

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> S3BlobStore:
        """``s3://bucket/prefix[?endpoint_url=...&region=...&path_style=true]`` + the standard AWS variables.

        ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` and ``AWS_PROFILE``
        are taken from ``env`` (the settings' environment); what is not there, boto3 finds its
        usual way (shared config files, instance roles).
        """
        env = env or {}
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise FileStoreError(f"not an S3 URL: {url!r} (expected s3://BUCKET[/PREFIX])")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint_url", "region", "path_style"}
        if unknown:
            raise FileStoreError(f"unknown option(s) in the files URL {url!r}: {', '.join(sorted(unknown))} "
                                 "(known: endpoint_url, region, path_style)")
        path_style = query.get("path_style")
        return cls(
            parts.netloc, unquote(parts.path),
            endpoint_url=query.get("endpoint_url") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
            region=query.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            access_key_id=env.get("AWS_ACCESS_KEY_ID"), secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"), profile=env.get("AWS_PROFILE"),
            path_style=None if path_style is None else path_style.strip().lower() in _TRUE,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}')"

    async def put(self, content: bytes, *, filename: str, mime_type: str | None = None) -> Blob:
        blob = Blob(uuid.uuid4().hex, filename, mime_type or guess_mime_type(filename), len(content))
        await self._call(blob.id, lambda: self._client.put_object(
            Bucket=self.bucket, Key=self._key(blob.id), Body=content, ContentType=blob.mime_type,
            Metadata={"filename": quote(filename, safe="")}))
        return blob

    async def get(self, blob_id: str) -> bytes:
        key = self._key(blob_id)

        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return await self._call(blob_id, read)

    async def info(self, blob_id: str) -> Blob:
        key = self._key(blob_id)
        head = await self._call(blob_id, lambda: self._client.head_object(Bucket=self.bucket, Key=key))
        meta = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
        filename = unquote(meta.get("filename", blob_id))
        return Blob(blob_id, filename, str(head.get("ContentType") or guess_mime_type(filename)),
                    int(head.get("ContentLength") or 0))

    async def delete(self, blob_id: str) -> None:
        try:
            key = self._key(blob_id)
        except BlobNotFound:
            return
        with contextlib.suppress(BlobNotFound):
            await self._call(blob_id, lambda: self._client.delete_object(Bucket=self.bucket, Key=key))

    def _key(self, blob_id: str) -> str:
        if not valid_blob_id(blob_id):
            raise BlobNotFound(str(blob_id))
        return f"{self.prefix}{blob_id}"

    async def _call(self, blob_id: str, call: Callable[[], _T]) -> _T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(call)
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _MISSING:
                raise BlobNotFound(blob_id) from None
            if code == "NoSuchBucket":
                raise FileStoreError(f"the file store's bucket '{self.bucket}' does not exist") from None
            message = error.get("Message") or code
            raise FileStoreError(f"the file store s3://{self.bucket}/{self.prefix} refused the request: "
                                 f"{message} ({code})") from None
        except BotoCoreError as e:
            raise FileStoreError(f"the file store s3://{self.bucket}/{self.prefix} cannot be used: {e}") from None
