# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 access for offsite copies: one client per target, every failure an OffsiteError naming the object.

boto3 is optional on hosts (only offsite needs it), so it is imported here,
lazily, with a clear message when missing. Uploads carry SHA-256 checksums
the server checks; large files go up in parts of ``part_size_mb``, so memory
stays at one part whatever the file size. Credentials come from the target
or boto3's usual chain and never appear in a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import hashlib
import os

from .._errors import OffsiteError, VerifyError

CHUNK = 1 << 20
MIB = 1 << 20
NOT_FOUND = ("404", "NoSuchKey", "NotFound")
CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId",
               "AuthorizationHeaderMalformed")


def _boto():
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise OffsiteError("offsite copies need the Python package boto3 on this host (Debian: apt install python3-boto3)")
    return boto3, botocore


def error_code(exc):
    """The S3 or IAM error code of a ClientError ("InvalidAccessKeyId", "NoSuchBucket"), else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str((response.get("Error") or {}).get("Code") or "") or None


def b64(digest):
    return base64.b64encode(digest).decode("ascii")


def hex_to_b64(hexdigest):
    return b64(bytes.fromhex(hexdigest))


class Remote:
    """A bucket on one endpoint, seen through one boto3 client."""

    def __init__(self, target):
        boto3, botocore = _boto()
        self._exceptions = botocore.exceptions
        self.bucket = target["bucket"]
        self.endpoint = target.get("endpoint_url") or "AWS S3"
        options = dict(
            s3={"addressing_style": target.get("addressing_style") or "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        )
        mode = target.get("checksum_mode") or "when_supported"
        try:
            config = botocore.config.Config(request_checksum_calculation=mode, response_checksum_validation=mode, **options)
        except TypeError:  # botocore before 1.36 never sends the newer default checksums anyway
            config = botocore.config.Config(**options)
        credentials = dict(
            aws_access_key_id=target.get("access_key"),
            aws_secret_access_key=target.get("secret_key"),
            aws_session_token=target.get("session_token"),
        )
        if bool(credentials["aws_access_key_id"]) != bool(credentials["aws_secret_access_key"]):
            raise OffsiteError("offsite: set both access_key and secret_key, or neither to use boto3's credential chain")
        if target.get("aws_profile") and credentials["aws_access_key_id"]:
            raise OffsiteError("offsite: set aws_profile or access_key and secret_key, not both")
        credentials["profile_name"] = target.get("aws_profile")
        try:
            session = boto3.session.Session(**dict((k, v) for k, v in credentials.items() if v))
        except botocore.exceptions.ProfileNotFound:
            raise OffsiteError("offsite.aws_profile: the AWS profile %r is not in this host's ~/.aws/config or "
                               "~/.aws/credentials" % target["aws_profile"])
        # as amazon.aws: a CA bundle wins; validate_certs false turns checking off (for a test endpoint only)
        verify = target.get("aws_ca_bundle") or target.get("validate_certs") is not False
        self.client = session.client("s3", endpoint_url=target.get("endpoint_url"), region_name=target.get("region"),
                                     config=config, verify=verify)

    def url(self, key=""):
        return "s3://%s/%s" % (self.bucket, key)

    def error(self, exc, doing, key=""):
        """One OffsiteError naming the operation, the object and the cause; never credentials."""
        detail = self._detail(exc)
        error = OffsiteError("cannot %s %s: %s" % (doing, self.url(key), detail))
        error.code = error_code(exc)  # for a caller that waits out a key not valid yet (_actions/rotate_offsite_key)
        return error

    def _detail(self, exc):
        errors = self._exceptions
        if isinstance(exc, errors.ClientError):
            return self._client_detail(exc)
        if isinstance(exc, errors.NoCredentialsError):
            return "no credentials: set access_key and secret_key, or use boto3's chain (environment, ~/.aws, instance role)"
        if isinstance(exc, (errors.EndpointConnectionError, errors.ConnectionClosedError, errors.ConnectTimeoutError,
                            errors.ReadTimeoutError)):
            return "cannot reach %s (%s)" % (self.endpoint, type(exc).__name__)
        if isinstance(exc, (errors.BotoCoreError, OSError)):
            return getattr(exc, "strerror", None) or str(exc)
        raise exc  # a bug, not a storage failure: let it show

    def _client_detail(self, exc):
        info = exc.response.get("Error") or {}
        code = str(info.get("Code") or "")
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return "bucket %s does not exist at %s" % (self.bucket, self.endpoint)
        if code in CREDENTIALS:
            return "the credentials were rejected by %s (%s); check access_key, secret_key and session_token" % (self.endpoint, code)
        if code in ("AccessDenied", "403") or status == 403:
            return "access denied by %s (wrong credentials, missing permission, or Object Lock)" % self.endpoint
        return "%s (%s)" % (info.get("Message") or "request failed", code or status)

    def _call(self, doing, key, method, **kwargs):
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except Exception as exc:  # translated, or re-raised by _detail when unknown
            raise self.error(exc, doing, key)

    # -- reading ---------------------------------------------------------------------------------------------------------

    def list(self, prefix):
        """Every object under ``prefix``: key -> {"size", "modified"} (also proves bucket and credentials)."""
        objects = {}
        token = None
        while True:
            kwargs = {"Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list", prefix, "list_objects_v2", **kwargs)
            for item in page.get("Contents") or []:
                objects[item["Key"]] = {"size": item["Size"], "modified": item["LastModified"]}
            if not page.get("IsTruncated"):
                return objects
            token = page.get("NextContinuationToken")
            if not token:  # what was left out is unknown: a partial listing must never look like the whole
                raise OffsiteError("cannot list %s: %s sent a truncated page without a continuation token"
                                   % (self.url(prefix), self.endpoint))

    def head(self, key):
        """Size, checksum, metadata and lock of one object; None when it does not exist."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as exc:
            if self._not_found(exc):
                return None
            raise self.error(exc, "read", key)

    def _not_found(self, exc):
        if isinstance(exc, self._exceptions.ClientError):
            return str((exc.response.get("Error") or {}).get("Code")) in NOT_FOUND
        return False

    def get(self, key):
        """A small object's bytes and metadata; (None, None) when it does not exist."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read(), response.get("Metadata") or {}
        except Exception as exc:
            if self._not_found(exc):
                return None, None
            raise self.error(exc, "download", key)

    def download(self, key, path):
        """Stream an object into a new 0600 file, hashing it; returns (bytes, sha256 hex)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                found = self._read(key, "download", handle.write)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise self.error(exc, "download", key)
        return found

    def digest(self, key):
        """Read an object back without keeping it: (bytes, sha256 hex), for a store that keeps no checksum."""
        return self._read(key, "read back", lambda chunk: None)

    def _read(self, key, doing, sink):
        response = self._call(doing, key, "get_object", Key=key)
        digest, size = hashlib.sha256(), 0
        try:
            for chunk in response["Body"].iter_chunks(CHUNK):
                sink(chunk)
                digest.update(chunk)
                size += len(chunk)
        except Exception as exc:
            raise self.error(exc, doing, key)
        return size, digest.hexdigest()

    def uploads(self, prefix):
        """Open multipart uploads under ``prefix``: [(key, upload id, initiated)]."""
        page = self._call("list multipart uploads under", prefix, "list_multipart_uploads", Prefix=prefix)
        return [(u["Key"], u["UploadId"], u.get("Initiated")) for u in page.get("Uploads") or []]

    def abort(self, key, upload_id):
        self._call("abort the multipart upload of", key, "abort_multipart_upload", Key=key, UploadId=upload_id)

    def versioned(self):
        status = self._call("read the versioning of", "", "get_bucket_versioning").get("Status")
        return status in ("Enabled", "Suspended")

    def object_lock_enabled(self):
        """True when the bucket has Object Lock (so legal holds can be set on its objects)."""
        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except Exception as exc:
            if isinstance(exc, self._exceptions.ClientError) and \
                    str((exc.response.get("Error") or {}).get("Code")) == "ObjectLockConfigurationNotFoundError":
                return False
            raise self.error(exc, "read the Object Lock configuration of", "")
        return (answer.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"

    def versions(self, prefix):
        """Every version and delete marker under ``prefix``: [(key, version id)]."""
        found, kwargs = [], {"Prefix": prefix}
        while True:
            page = self._call("list versions under", prefix, "list_object_versions", **kwargs)
            for item in (page.get("Versions") or []) + (page.get("DeleteMarkers") or []):
                found.append((item["Key"], item.get("VersionId")))
            if not page.get("IsTruncated"):
                return found
            kwargs.update(KeyMarker=page.get("NextKeyMarker"), VersionIdMarker=page.get("NextVersionIdMarker"))

    # -- writing ---------------------------------------------------------------------------------------------------------

    def put(self, key, data, extra):
        """Upload small bytes in one request with a SHA-256 the server checks; returns the checksum sent."""
        checksum = b64(hashlib.sha256(data).digest())
        self._call("upload", key, "put_object", Key=key, Body=data, ChecksumSHA256=checksum, **extra)
        return checksum

    def upload(self, key, path, expected, part_size, extra):
        """Upload a file, checking it against ``expected`` (bytes, sha256) on the way; returns the S3 checksum.

        A file larger than one part goes up in parts, each with its own
        SHA-256; the whole file's hash is compared with the manifest before
        the upload is completed, so a damaged local file never becomes an
        object. Any failure aborts the multipart upload.
        """
        size = os.path.getsize(path)
        if size <= part_size:
            with open(path, "rb") as handle:
                data = handle.read()
            _check_local(path, expected, len(data), hashlib.sha256(data).hexdigest())
            return self.put(key, data, extra)
        upload_id = self._call("start a multipart upload of", key, "create_multipart_upload", Key=key,
                               ChecksumAlgorithm="SHA256", **extra)["UploadId"]
        try:
            return self._upload_parts(key, path, upload_id, expected, part_size)
        except BaseException as exc:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:
                if isinstance(exc, OffsiteError):  # the next push aborts what is left
                    raise OffsiteError("%s; the incomplete upload could not be aborted now and is cleaned up by the next push" % exc)
            raise

    def _upload_parts(self, key, path, upload_id, expected, part_size):
        whole, digests, parts, size = hashlib.sha256(), [], [], 0
        with open(path, "rb") as handle:
            while True:
                data = handle.read(part_size)
                if not data:
                    break
                digest = hashlib.sha256(data).digest()
                whole.update(data)
                size += len(data)
                digests.append(digest)
                number = len(digests)
                etag = self.send_part(key, upload_id, number, data, b64(digest))
                parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": b64(digest)})
                del data
        _check_local(path, expected, size, whole.hexdigest())
        self._call("complete the multipart upload of", key, "complete_multipart_upload", Key=key, UploadId=upload_id,
                   MultipartUpload={"Parts": parts})
        return composite(digests)

    def send_part(self, key, upload_id, number, data, checksum):
        doing = "upload part %d of" % number
        response = self._call(doing, key, "upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                              ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum)
        return response["ETag"]

    def legal_hold(self, key, on):
        """Set (or lift) the Object Lock legal hold of an object's current version."""
        self._call("set the legal hold of" if on else "lift the legal hold of", key, "put_object_legal_hold", Key=key,
                   LegalHold={"Status": "ON" if on else "OFF"})

    def delete(self, keys):
        """Delete (key, version) pairs in batches; returns {key: error message} for the ones refused."""
        refused = {}
        for start in range(0, len(keys), 1000):
            batch = [dict(Key=k, VersionId=v) if v else dict(Key=k) for k, v in keys[start:start + 1000]]
            response = self._call("delete objects under", os.path.commonprefix([b["Key"] for b in batch]),
                                  "delete_objects", Delete={"Objects": batch, "Quiet": True})
            for item in response.get("Errors") or []:
                refused[item["Key"]] = "%s (%s)" % (item.get("Message") or "refused", item.get("Code"))
        return refused


def composite(digests):
    """S3's checksum of a multipart object: SHA-256 of the parts' SHA-256s, and the part count."""
    return "%s-%d" % (b64(hashlib.sha256(b"".join(digests)).digest()), len(digests))


def _check_local(path, expected, size, sha256):
    if (size, sha256) != (expected["bytes"], expected["sha256"]):
        raise VerifyError("local artifact %s does not match its manifest (%d bytes read, %d recorded): not pushing a damaged backup"
                          % (path, size, expected["bytes"]))


def lock_until(days, now=None):
    """Object Lock retain-until date ``days`` from now."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now + datetime.timedelta(days=days)


def locked(head, now=None):
    """Retain-until of an object still under Object Lock retention or legal hold; None when deletable."""
    if not head:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if head.get("ObjectLockLegalHoldStatus") == "ON":
        return "legal hold"
    until = head.get("ObjectLockRetainUntilDate")
    if until and until > now:
        return until.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None
