# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Naming one backup to read.
    DOCUMENTATION = r"""
options:
  path:
    description:
      - A backup directory (the one holding C(manifest.json)).
      - Mutually exclusive with O(profile) and O(backup_id).
    type: path
  profile:
    description:
      - Profile whose backup to use, under O(backup_root).
    type: str
  backup_id:
    description:
      - Id of the backup within O(profile), for example C(20261122T020000Z).
      - Default is the newest complete backup of the profile, ordered by the time recorded in its manifest.
    type: str
  identity_file:
    description:
      - age identity (private key) file able to decrypt the backup.
      - Needed for encrypted backups by every step that reads their content.
    type: path
"""
