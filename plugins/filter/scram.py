# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter lifeboat.backup.scram_verifier: the engine's client-side SCRAM-SHA-256 verifier, for roles that set a
password with ALTER ROLE, so the plaintext never reaches the server (documented in scram_verifier.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.lifeboat.backup.plugins.module_utils._postgres import scram


def scram_verifier(password):
    try:
        return scram.verifier(str(password))
    except ValueError as exc:
        raise AnsibleFilterError("scram_verifier: %s" % exc)


class FilterModule:
    def filters(self):
        return {"scram_verifier": scram_verifier}
