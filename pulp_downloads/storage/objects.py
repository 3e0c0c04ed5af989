"""Objects in the bucket of an S3 storage (django-storages), reached directly with boto3."""
from __future__ import annotations

import concurrent.futures
import posixpath
from collections.abc import Sequence
from pathlib import Path

from .paths import is_local

#: :meth:`ObjectStore.sizes` asks for up to this many objects with one HEAD each (on
#: :data:`HEAD_THREADS` threads); for more, it lists the directories that hold them.
HEAD_UP_TO = 1000
HEAD_THREADS = 16


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

    def sizes(self, names: Sequence[str]) -> dict[str, int | None]:
        """``{name: size in bytes, or None when there is no such object}`` for ``names``,
        without reading any object: one HEAD per object for up to :data:`HEAD_UP_TO` names,
        else one listing (1,000 keys a request) of each directory holding some of them."""
        if len(names) <= HEAD_UP_TO:
            if not names:
                return {}
            with concurrent.futures.ThreadPoolExecutor(
                    min(HEAD_THREADS, len(names)), thread_name_prefix="object-head") as pool:
                return dict(zip(names, pool.map(self.size, names)))
        wanted = set(names)
        found: dict[str, int | None] = dict.fromkeys(names)
        paginator = self.client.get_paginator("list_objects_v2")
        for directory in sorted({posixpath.dirname(name) for name in names}):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{directory}/"):
                for item in page.get("Contents", []):
                    if item["Key"] in wanted:
                        found[item["Key"]] = int(item["Size"])
        return found

    def delete(self, name: str) -> None:
        """Remove the object ``name`` (nothing happens when there is none)."""
        self.client.delete_object(Bucket=self.bucket, Key=name)

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

    def get(self, name: str, start: int, stop: int, size: int | None = None):
        """The object's bytes ``[start, stop)`` as a stream (``.iter_chunks()``,
        ``.close()``), or ``None`` when there is no such object, or (given its expected
        ``size``) when the object has another size."""
        from botocore.exceptions import ClientError

        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=name,
                                           Range=f"bytes={start}-{stop - 1}")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404") or (size is not None and code == "InvalidRange"):
                return None
            raise
        total = reply.get("ContentRange", "").rpartition("/")[2]
        if size is not None and total.isdigit() and int(total) != size:
            reply["Body"].close()
            return None
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
