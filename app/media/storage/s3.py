"""The S3 / MinIO backend through the ``minio`` SDK: browsers move the bytes through
presigned URLs (see :mod:`app.media.storage`)."""

from __future__ import annotations

import functools
from datetime import UTC, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from app.media.storage.base import (
    CHUNK,
    ListedObject,
    ObjectChanged,
    PartInfo,
    PendingUpload,
    Storage,
    StorageError,
    StorageUnavailable,
    content_disposition,
)


class S3Storage(Storage):
    def __init__(
        self,
        url: str,
        region: str = "us-east-1",
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retries: int = 2,
        ca_certs: str | None = None,
    ):
        import certifi
        import urllib3
        from minio import Minio

        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        secure = query.get("secure", "true").lower() not in ("false", "0", "no")
        self.bucket = parts.path.strip("/").split("/")[0]
        if not self.bucket:
            raise StorageError("STORAGE_URL needs a bucket: s3://KEY:SECRET@host:port/bucket")
        self.name = f"s3:{self.bucket}"

        def client(read: float):
            return Minio(
                parts.hostname + (f":{parts.port}" if parts.port else ""),
                access_key=unquote(parts.username or ""),
                secret_key=unquote(parts.password or ""),
                secure=secure,
                region=query.get("region", region),
                http_client=urllib3.PoolManager(
                    # minio's own defaults are a 5-minute connect and read timeout and
                    # 5 retries with back-off: a refused connection took 6 s to become a
                    # 503, and an S3 host that drops packets held a web worker until
                    # gunicorn killed it.  A store that does not connect within seconds
                    # is down.
                    timeout=urllib3.Timeout(connect=connect_timeout, read=read),
                    retries=urllib3.Retry(
                        total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
                    ),
                    maxsize=10,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=ca_certs or certifi.where(),  # as minio does
                ),
            )

        self.client = client(read_timeout)
        # A server-side copy of a multi-GB object answers only when it is done (the
        # verification job's move): that one call may wait longer than a request should.
        self._copy_client = client(max(read_timeout, 900.0))
        self._bucket_checked = False

    def ensure_bucket(self) -> None:
        if not self._bucket_checked:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self._bucket_checked = True

    def put_file(self, key, path, media_type):
        self.ensure_bucket()
        self.client.fput_object(self.bucket, key, path, content_type=media_type)

    def put_bytes(self, key, data, media_type):
        import io

        self.ensure_bucket()
        self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=media_type
        )

    def stat(self, key):
        from minio.error import S3Error

        try:
            return self.client.stat_object(self.bucket, key).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise

    def fingerprint(self, key):
        from minio.error import S3Error

        try:
            found = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise
        return found.size, (found.etag or "").strip('"')

    def read_version(self, key, version, chunk=CHUNK):
        from minio.error import S3Error

        try:
            # If-Match: S3 serves exactly that version or refuses (412), atomically.
            response = self.client.get_object(
                self.bucket, key, request_headers={"If-Match": f'"{version}"'}
            )
        except S3Error as exc:
            if exc.code in ("PreconditionFailed", "NoSuchKey", "NoSuchObject", "NotFound"):
                raise ObjectChanged(key) from None
            raise
        try:
            yield from response.stream(chunk)
        finally:
            response.close()
            response.release_conn()

    def read_range(self, key, start, length):
        response = self.client.get_object(self.bucket, key, offset=start, length=length)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def iter_chunks(self, key, chunk=CHUNK):
        response = self.client.get_object(self.bucket, key)
        try:
            yield from response.stream(chunk)
        finally:
            response.close()
            response.release_conn()

    def download_to(self, key, path):
        self.client.fget_object(self.bucket, key, path)

    def delete(self, key):
        self.client.remove_object(self.bucket, key)

    def list(self, prefix):
        self.ensure_bucket()
        for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            modified = (
                item.last_modified.astimezone(UTC).replace(tzinfo=None)
                if item.last_modified
                else None
            )
            yield ListedObject(item.object_name, item.size or 0, modified)

    def delete_prefix(self, prefix):
        from minio.deleteobjects import DeleteObject

        keys = [DeleteObject(o.key) for o in self.list(prefix)]
        if keys:
            errors = list(self.client.remove_objects(self.bucket, keys))
            if errors:
                raise StorageError(f"could not delete {len(errors)} objects under {prefix}")
        return len(keys)

    def move(self, source, target):
        from minio.commonconfig import ComposeSource, CopySource

        size = self.stat(source)
        if size is not None and size > 5 * 1024**3:
            # Copy is limited to 5 GB per request; compose copies it server-side in parts.
            self._copy_client.compose_object(
                self.bucket, target, [ComposeSource(self.bucket, source)]
            )
        else:
            self._copy_client.copy_object(self.bucket, target, CopySource(self.bucket, source))
        self.delete(source)

    def start_upload(self, key, media_type):
        self.ensure_bucket()
        return self.client._create_multipart_upload(self.bucket, key, {"Content-Type": media_type})

    def single_put_url(self, key, max_bytes, expires):
        self.ensure_bucket()
        return self.client.presigned_put_object(self.bucket, key, timedelta(seconds=expires))

    def part_url(self, key, upload_token, number, max_bytes, expires):
        return self.client.get_presigned_url(
            "PUT",
            self.bucket,
            key,
            timedelta(seconds=expires),
            extra_query_params={"uploadId": upload_token, "partNumber": str(number)},
        )

    def list_parts(self, key, upload_token):
        from minio.error import S3Error

        parts: list[PartInfo] = []
        marker = None
        try:
            while True:
                result = self.client._list_parts(
                    self.bucket, key, upload_token, max_parts=1000, part_number_marker=marker
                )
                parts.extend(PartInfo(p.part_number, p.etag, p.size or 0) for p in result.parts)
                if not result.is_truncated:
                    return parts
                marker = result.next_part_number_marker
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                return []
            raise

    def complete_upload(self, key, upload_token, parts):
        from minio.datatypes import Part

        self.client._complete_multipart_upload(
            self.bucket, key, upload_token, [Part(p.number, p.etag) for p in parts]
        )

    def abort_upload(self, key, upload_token):
        from minio.error import S3Error

        try:
            self.client._abort_multipart_upload(self.bucket, key, upload_token)
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise
        if self.stat(key) is not None:
            self.delete(key)

    def pending_uploads(self, prefix):
        self.ensure_bucket()
        result = self.client._list_multipart_uploads(self.bucket, prefix=prefix, max_uploads=1000)
        found = []
        for upload in result.uploads:
            initiated = upload.initiated_time
            if initiated is not None:
                initiated = initiated.astimezone(UTC).replace(tzinfo=None)
            found.append(PendingUpload(upload.object_name, upload.upload_id, initiated))
        return found

    def download_url(self, key, filename, media_type, expires, inline=True):
        return self.client.presigned_get_object(
            self.bucket,
            key,
            timedelta(seconds=expires),
            response_headers={
                "response-content-type": media_type,
                "response-content-disposition": content_disposition(filename, inline),
            },
        )


def _is_outage(exc: Exception) -> bool:
    """No answer from S3: the minio SDK's transport (urllib3: refused connections,
    timeouts, retries used up; matched by module so that urllib3 stays minio's own
    dependency), a 5xx after its retries, or a plain socket error."""
    from minio.error import ServerError

    if isinstance(exc, ServerError | ConnectionError | TimeoutError):
        return True
    return any(cls.__module__.startswith("urllib3.") for cls in type(exc).__mro__)


def _s3_unavailable(method):
    """S3 that does not answer (connection refused, timeouts, 5xx after the SDK's own
    retries) becomes :class:`StorageUnavailable`; S3's answers (NoSuchKey...) pass."""

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if _is_outage(exc):
                raise StorageUnavailable("unreachable", f"{type(exc).__name__}: {exc}") from exc
            raise

    return call


def _s3_unavailable_stream(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            yield from method(*args, **kwargs)
        except Exception as exc:
            if _is_outage(exc):
                raise StorageUnavailable("unreachable", f"{type(exc).__name__}: {exc}") from exc
            raise

    return call


for _name in (
    "ensure_bucket",
    "put_file",
    "put_bytes",
    "stat",
    "fingerprint",
    "read_range",
    "download_to",
    "delete",
    "delete_prefix",
    "move",
    "start_upload",
    "list_parts",
    "complete_upload",
    "abort_upload",
    "pending_uploads",
):
    setattr(S3Storage, _name, _s3_unavailable(getattr(S3Storage, _name)))
for _name in ("iter_chunks", "read_version", "list"):
    setattr(S3Storage, _name, _s3_unavailable_stream(getattr(S3Storage, _name)))
