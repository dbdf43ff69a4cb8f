# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed engine errors.

Every failure the engine can foresee is one of these. Modules turn them into
``fail_json(msg=str(err))``, the CLI into one line on stderr and ``exit_code``;
nobody shows a traceback to an operator.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class LifeboatError(Exception):
    """Base class; ``exit_code`` is what the ``lifeboat`` command exits with."""

    exit_code = 1
    kind = "error"


class ConfigError(LifeboatError):
    """Invalid configuration, profile or option."""

    exit_code = 2
    kind = "config"


class LockError(LifeboatError):
    """Another run holds the profile lock."""

    exit_code = 3
    kind = "lock"


class DatabaseError(LifeboatError):
    """Cannot connect, authenticate or query the server."""

    exit_code = 4
    kind = "database"


class DumpError(LifeboatError):
    """The dump pipeline failed; no backup was recorded."""

    exit_code = 5
    kind = "dump"


class VerifyError(LifeboatError):
    """A backup failed verification."""

    exit_code = 6
    kind = "verify"


class RestoreError(LifeboatError):
    """A restore was refused or failed."""

    exit_code = 7
    kind = "restore"


class StorageError(LifeboatError):
    """The backup storage cannot be written or read (disk full, permissions)."""

    exit_code = 8
    kind = "storage"


class OffsiteError(LifeboatError):
    """Object storage refused or failed an operation."""

    exit_code = 9
    kind = "offsite"


class NotFoundError(LifeboatError):
    """The requested backup, profile or file does not exist."""

    exit_code = 10
    kind = "not_found"


class ObjectiveError(LifeboatError):
    """A recovery drill restored and checked the backup but missed its RTO or RPO objective."""

    exit_code = 11
    kind = "objective"
