"""Objects in the bucket of an S3 storage (django-storages), reached directly with boto3."""
from __future__ import annotations

from pathlib import Path

from .paths import is_local


class ObjectStore:
    """Puts objects into the bucket of a django-storages S3 storage with one boto3 client
    shared by every placing thread (clients are thread-safe; the storage's own resources
    are made per thread, tens of MB each): a small object in one PutObject, a file by a
    multipart upload read from disk part by part."""

    def __init__(self, storage) -> None:
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        self.transfer_config = getattr(storage, "transfer_config", None)

    @classmethod
    def of(cls, storage) -> "ObjectStore | None":
        """For an S3 storage of django-storages; ``None`` for any other storage."""
        if is_local(storage) or not hasattr(storage, "bucket_name"):
            return None
        return cls(storage)

    def reachable(self) -> bool:
        """Whether the bucket answers (HeadBucket) with these credentials."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError):
            return False
        return True

    def size(self, name: str) -> int | None:
        """The object's size in bytes, or ``None`` when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            reply = self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return int(reply["ContentLength"])

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise
        return True

    def put(self, name: str, source: Path | bytes) -> None:
        extra = {"ContentType": "application/octet-stream"}
        if isinstance(source, bytes):
            self.client.put_object(Bucket=self.bucket, Key=name, Body=source, **extra)
        else:
            self.client.upload_file(str(source), self.bucket, name, ExtraArgs=extra,
                                    Config=self.transfer_config)

    def get(self, name: str, start: int, stop: int):
        """The object's bytes ``[start, stop)`` as a stream (``.iter_chunks()``,
        ``.close()``), or ``None`` when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=name,
                                           Range=f"bytes={start}-{stop - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return reply["Body"]

    def abort_uploads_before(self, prefix: str, cutoff) -> int:
        """Abort the multipart uploads of keys under ``prefix`` started before ``cutoff``;
        returns how many."""
        from botocore.exceptions import ClientError

        aborted = 0
        try:
            pages = list(self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix))
        except ClientError as exc:
            # Some S3 servers answer a bucket without uploads with NoSuchUpload.
            if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return 0
            raise
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] <= cutoff:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                       UploadId=upload["UploadId"])
                    aborted += 1
        return aborted
