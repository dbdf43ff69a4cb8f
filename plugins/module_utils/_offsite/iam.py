# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The access keys of one IAM user: list them with their age, create one, delete one.

AWS IAM, or a store that speaks the IAM API on its S3 endpoint (SeaweedFS, with ``-s3.iam.readOnly=false``): by
default the calls go to the offsite ``endpoint_url`` when one is set, else to AWS IAM. They authenticate with the
admin credentials given, else with the key being rotated (AWS lets a user manage its own keys). Every failure is an
OffsiteError naming the IAM call, the user and the cause; a secret is never part of a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar

from .._errors import OffsiteError
from . import s3 as _s3

LIMIT = 2  # access keys per IAM user (AWS's quota; SeaweedFS has none, we keep AWS's rule everywhere)
ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


class Keys:
    """IAM calls about access keys, through one boto3 client."""

    def __init__(self, target, admin=None, endpoint_url=None):
        boto3, botocore = _s3._boto()
        self._exceptions = botocore.exceptions
        admin = admin or {}
        if bool(admin.get("access_key")) != bool(admin.get("secret_key")):
            raise OffsiteError("offsite IAM: set both admin access key and admin secret key, or neither (to manage the "
                               "keys with the key being rotated)")
        if admin.get("access_key"):
            credentials = (admin["access_key"], admin["secret_key"], admin.get("session_token"))
        else:
            credentials = (target.get("access_key"), target.get("secret_key"), target.get("session_token"))
        self.endpoint_url = endpoint_url or target.get("endpoint_url")
        self.endpoint = self.endpoint_url or "AWS IAM"
        config = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        session = boto3.session.Session(aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1],
                                        aws_session_token=credentials[2] or None)
        verify = target.get("aws_ca_bundle") or target.get("validate_certs") is not False
        self.client = session.client("iam", endpoint_url=self.endpoint_url, region_name=target.get("region"),
                                     config=config, verify=verify)

    def error(self, exc, call, user):
        return OffsiteError("IAM %s%s at %s: %s" % (call, " for user %s" % user if user else "", self.endpoint, self._detail(exc, call)))

    def _detail(self, exc, call):
        errors = self._exceptions
        if isinstance(exc, errors.ClientError):
            return self._client_detail(exc, call)
        if isinstance(exc, errors.NoCredentialsError):
            return "no credentials: give the admin credentials or the access key being rotated"
        if isinstance(exc, (errors.EndpointConnectionError, errors.ConnectionClosedError, errors.ConnectTimeoutError,
                            errors.ReadTimeoutError)):
            return "cannot reach %s (%s)" % (self.endpoint, type(exc).__name__)
        if isinstance(exc, errors.ParamValidationError):
            return "the request was refused before it was sent: %s" % str(exc).splitlines()[-1][:200]
        if isinstance(exc, (errors.BotoCoreError, OSError)):
            return getattr(exc, "strerror", None) or str(exc)
        raise exc  # a bug, not a failure of the store: let it show

    @staticmethod
    def _client_detail(exc, call):
        info = exc.response.get("Error") or {}
        code = str(info.get("Code") or "")
        message = (info.get("Message") or code or "request failed")[:200]
        if code in _s3.CREDENTIALS:
            return "the credentials were rejected (%s); check the admin access key and secret key" % code
        if code in ACCESS_DENIED:
            return "access denied (%s): the credentials need iam:%s on this user" % (message, call)
        if code == "NoSuchEntity":
            return "no such IAM user"
        return "%s (%s)" % (message, code or "no error code")

    def _call(self, call, user, method, **kwargs):
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:  # translated, or re-raised by _detail when unknown
            raise self.error(exc, call, user)

    def caller(self):
        """The user name of the credentials the calls are made with (GetUser without a name)."""
        return self._call("GetUser", None, "get_user")["User"]["UserName"]

    def exists(self, user):
        """Whether the user exists (ListAccessKeys of an unknown user answers [] on SeaweedFS)."""
        try:
            self.client.get_user(UserName=user)
            return True
        except Exception as exc:
            if _s3.error_code(exc) == "NoSuchEntity":
                return False
            raise self.error(exc, "GetUser", user)

    def list(self, user):
        """The user's keys, oldest first: [{"id", "status", "created": Unix time or None}]."""
        keys, kwargs = [], {"UserName": user}
        while True:
            page = self._call("ListAccessKeys", user, "list_access_keys", **kwargs)
            for item in page.get("AccessKeyMetadata") or []:
                created = item.get("CreateDate")
                keys.append({"id": item["AccessKeyId"], "status": item.get("Status") or "Active",
                             "created": calendar.timegm(created.utctimetuple()) if created else None})
            if not page.get("IsTruncated") or not page.get("Marker"):
                return sorted(keys, key=lambda k: (k["created"] or 0, k["id"]))
            kwargs["Marker"] = page["Marker"]

    def create(self, user):
        """A new active key: (access key id, secret access key). The secret exists only in the returned tuple."""
        key = self._call("CreateAccessKey", user, "create_access_key", UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def delete(self, user, key_id):
        self._call("DeleteAccessKey", user, "delete_access_key", UserName=user, AccessKeyId=key_id)
