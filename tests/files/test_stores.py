"""What every blob store keeps: run against the local directory and a real S3-compatible server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import boto3
import pytest

from taskcanvas.config import ConfigError, Settings
from taskcanvas.files import BlobNotFound, BlobStore, FileStoreError, LocalBlobStore, blob_store
from taskcanvas.files.s3 import S3BlobStore
from tests.files.conftest import S3Server


async def test_bytes_name_and_type_come_back(store: BlobStore) -> None:
    blob = await store.put(b"a,b\n1,2\n", filename="table.csv")
    assert (blob.filename, blob.mime_type, blob.size) == ("table.csv", "text/csv", 8)
    assert len(blob.id) == 32
    assert await store.get(blob.id) == b"a,b\n1,2\n"
    assert await store.info(blob.id) == blob


async def test_names_outside_ascii_and_given_types_are_kept(store: BlobStore) -> None:
    blob = await store.put(b"\x00\x01binary", filename="Résumé 2024 — 報告.bin", mime_type="application/x-test")
    info = await store.info(blob.id)
    assert info.filename == "Résumé 2024 — 報告.bin"
    assert info.mime_type == "application/x-test"
    assert await store.get(blob.id) == b"\x00\x01binary"


async def test_empty_and_larger_files(store: BlobStore) -> None:
    empty = await store.put(b"", filename="empty.txt")
    big = await store.put(bytes(range(256)) * 8192, filename="big.dat")  # 2 MiB
    assert await store.get(empty.id) == b""
    assert (await store.info(empty.id)).size == 0
    assert await store.get(big.id) == bytes(range(256)) * 8192
    assert (await store.info(big.id)).size == 2 * 1024 * 1024


async def test_every_put_gets_its_own_id(store: BlobStore) -> None:
    blobs = await asyncio.gather(*(store.put(str(i).encode(), filename="same.txt") for i in range(5)))
    assert len({b.id for b in blobs}) == 5
    assert [await store.get(b.id) for b in blobs] == [str(i).encode() for i in range(5)]


async def test_deleted_or_made_up_ids_are_not_found(store: BlobStore) -> None:
    blob = await store.put(b"x", filename="x.txt")
    await store.delete(blob.id)
    await store.delete(blob.id)  # twice is fine
    await store.delete("../../etc/passwd")
    for wanted in (blob.id, "../../etc/passwd", "0" * 31, "f" * 32):
        with pytest.raises(BlobNotFound, match="no stored file"):
            await store.get(wanted)
        with pytest.raises(BlobNotFound):
            await store.info(wanted)


# --------------------------------------------------------------------------- S3 only
async def test_s3_objects_sit_under_the_prefix_with_their_type(s3_server: S3Server) -> None:
    bucket = s3_server.make_bucket()
    store = S3BlobStore.from_url(f"s3://{bucket}/team/a?endpoint_url={s3_server.endpoint_url}", s3_server.env)
    blob = await store.put(b"# Title\n", filename="notes.md")
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    head = client.head_object(Bucket=bucket, Key=f"team/a/{blob.id}")
    assert head["ContentType"] == "text/markdown"
    assert head["ContentLength"] == 8


async def test_s3_missing_bucket_is_a_clear_error(s3_server: S3Server) -> None:
    store = S3BlobStore.from_url(f"s3://no-such-bucket-here?endpoint_url={s3_server.endpoint_url}", s3_server.env)
    with pytest.raises(FileStoreError, match="bucket 'no-such-bucket-here' does not exist"):
        await store.put(b"x", filename="x.txt")


def test_settings_choose_the_backend(tmp_path: Path, s3_server: S3Server) -> None:
    local = blob_store(Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path)}))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "files"
    elsewhere = blob_store(Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path),
                                          "TASKCANVAS_FILES_URL": str(tmp_path / "blobs")}))
    assert isinstance(elsewhere, LocalBlobStore) and elsewhere.root == tmp_path / "blobs"
    env = {"TASKCANVAS_DATA_DIR": str(tmp_path), "TASKCANVAS_FILES_URL": "s3://bucket/some/prefix/",
           "AWS_ENDPOINT_URL": s3_server.endpoint_url, **s3_server.env}
    s3 = blob_store(Settings.load(env))
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == ("bucket", "some/prefix/", s3_server.endpoint_url)


async def test_the_s3_store_from_settings_works(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.make_bucket()
    env = {"TASKCANVAS_DATA_DIR": str(tmp_path), "TASKCANVAS_FILES_URL": f"s3://{bucket}",
           "AWS_ENDPOINT_URL_S3": s3_server.endpoint_url, **s3_server.env}
    store = blob_store(Settings.load(env))
    blob = await store.put(b"hello", filename="hello.txt")
    assert await store.get(blob.id) == b"hello"


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://host/dir", "is not s3://BUCKET"),
    ("s3:///prefix", "needs a bucket"),
    ("s3://bucket?region=x&colour=blue", "unknown option"),
])
def test_unusable_files_urls_are_config_errors(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        blob_store(Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path), "TASKCANVAS_FILES_URL": url}))


def test_the_size_limit_is_a_setting(tmp_path: Path) -> None:
    assert Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path)}).files_max_bytes == 20 * 1024 * 1024
    assert Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path),
                          "TASKCANVAS_FILES_MAX_SIZE_MB": "0.5"}).files_max_bytes == 512 * 1024
    (tmp_path / "config.toml").write_text('[files]\nmax_size_mb = 2\n', encoding="utf-8")
    assert Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path)}).files_max_bytes == 2 * 1024 * 1024
    with pytest.raises(ConfigError, match="number of megabytes"):
        Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path), "TASKCANVAS_FILES_MAX_SIZE_MB": "lots"})
