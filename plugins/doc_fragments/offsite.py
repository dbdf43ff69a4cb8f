# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# Where offsite copies live: an S3 bucket on AWS or an S3-compatible store. The options are written once: the module
# offsite takes them at its top level, verify and restore under their option offsite.
_TARGET = r"""
  bucket:
    description:
      - Bucket holding the offsite copies. It must exist; lifeboat never creates or configures buckets.
    type: str
    required: true
  prefix:
    description:
      - Key prefix in the bucket. Backups live under C(<prefix>/<host>/<profile>/<backup_id>/).
    type: str
    default: lifeboat
  endpoint_url:
    description:
      - URL of an S3-compatible store (SeaweedFS, Ceph RGW, MinIO, ...). Leave unset for AWS S3.
    type: str
    aliases: [aws_endpoint_url]
  region:
    description:
      - Region of the bucket. Default is boto3's (environment or C(~/.aws/config)).
    type: str
    aliases: [aws_region]
  addressing_style:
    description:
      - V(path) for stores that do not serve buckets as host names; V(virtual) forces bucket host names.
    type: str
    choices: [auto, path, virtual]
    default: auto
  storage_class:
    description:
      - Storage class of uploaded objects, for example C(STANDARD_IA). Default is the bucket's.
    type: str
  server_side_encryption:
    description:
      - Server-side encryption of uploaded objects, on top of lifeboat's own age encryption.
    type: str
    choices: [AES256, aws:kms]
    aliases: [encryption_mode]
  sse_kms_key_id:
    description:
      - KMS key for O(server_side_encryption=aws:kms). Default is the account's S3 key.
    type: str
    aliases: [encryption_kms_key_id]
  access_key:
    description:
      - Access key id. When neither O(access_key) nor O(secret_key) is set, boto3's credential chain is used
        (environment, C(~/.aws/credentials), instance or task role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - Secret access key. Never logged and never placed in a process's arguments.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - Session token of temporary credentials.
    type: str
    aliases: [aws_session_token]
  aws_profile:
    description:
      - AWS named profile (C(~/.aws/config), C(~/.aws/credentials) of the user running the task) to take credentials
        and settings from, as amazon.aws's O(aws_profile). Mutually exclusive with O(access_key) and O(secret_key).
      - Unrelated to lifeboat's C(profile) option, which names a backup set.
    type: str
  validate_certs:
    description:
      - Check the endpoint's TLS certificate. V(false) is for test endpoints only.
    type: bool
    default: true
  aws_ca_bundle:
    description:
      - CA bundle file to check the endpoint's certificate with, for a store behind a private CA.
    type: path
  checksum_mode:
    description:
      - V(when_required) sets boto3's C(request_checksum_calculation) and C(response_checksum_validation) to
        C(when_required), for stores that reject the newer default checksum headers. Uploads still carry
        their SHA-256 checksums either way.
    type: str
    choices: [when_supported, when_required]
    default: when_supported
  object_lock_mode:
    description:
      - Object Lock retention mode set on every uploaded object. The bucket must have Object Lock enabled.
      - Needs O(object_lock_days).
    type: str
    choices: [GOVERNANCE, COMPLIANCE]
  object_lock_days:
    description:
      - Days each uploaded object stays under Object Lock retention.
    type: int
  part_size_mb:
    description:
      - Files larger than this go up in parts of this size (MiB); it bounds the memory a push uses.
    type: int
    default: 16
"""


# Reading a backup from the bucket instead of backup_root (verify, restore): the same options, one level down.
_SOURCE = r"""
options:
  offsite:
    description:
      - Read the backup from object storage instead of O(backup_root). O(profile) and O(backup_id) (default the
        newest) then name a backup in the bucket, which is downloaded into a private temporary directory (under
        C(tmp_dir) where the module has that option), checked object by object against its manifest, used, and removed.
      - Takes the options of M(lifeboat.backup.offsite) that describe the bucket, and O(offsite.host).
    type: dict
    suboptions:
      host:
        description:
          - Host whose backups to read (the C(<host>) part of the keys). Default is this host's name.
        type: str"""


class ModuleDocFragment(object):
    """DOCUMENTATION and SOURCE are set from _TARGET below, so nothing is repeated.

    Ansible imports fragments (ansible-doc, validate-modules); ansible-test's yamllint reads only literals in the
    class body, so these two are left to validate-modules and tests/unit/test_one_schema.py.
    """


ModuleDocFragment.DOCUMENTATION = "options:" + _TARGET
ModuleDocFragment.SOURCE = _SOURCE + _TARGET.replace("\n  ", "\n      ").replace("O(", "O(offsite.")
