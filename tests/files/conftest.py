"""Both blob stores, for the tests that every backend must pass.

The S3 store talks to a real S3-compatible server on 127.0.0.1: moto's threaded server, started
once per test session, with a fresh bucket per test.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskcanvas.files import BlobStore, LocalBlobStore
from taskcanvas.files.s3 import S3BlobStore


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    env: dict[str, str]

    def make_bucket(self) -> str:
        import boto3

        name = f"tc-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                              aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=name)
        return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}",
                       {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": "us-east-1"})
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """Each backend in turn: a directory, and a bucket (with a key prefix) on the S3 server."""
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "files")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.make_bucket()
    yield S3BlobStore.from_url(f"s3://{bucket}/runs/files?endpoint_url={server.endpoint_url}", server.env)
