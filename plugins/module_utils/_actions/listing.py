# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``lifeboat list`` and module catalog_info: every profile's backups and health, read-only."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .._store import catalog as _catalog


def report(backup_root, profile=None):
    """profile -> {"health", "backups"} for one profile, or every profile under ``backup_root``."""
    names = [profile] if profile else _catalog.profiles(backup_root)
    return dict((name, _catalog.report(backup_root, name)) for name in names)
