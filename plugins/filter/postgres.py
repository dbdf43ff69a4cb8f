# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's PostgreSQL helpers for roles: filters lifeboat.backup.scram_verifier (a password set with ALTER ROLE
never reaches the server as plaintext) and lifeboat.backup.pgpass_escape (a libpq passfile field); documented in
scram_verifier.yml and pgpass_escape.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.lifeboat.backup.plugins.module_utils._postgres import scram
from ansible_collections.lifeboat.backup.plugins.module_utils._postgres.session import passfile_escape


def scram_verifier(password):
    try:
        return scram.verifier(str(password))
    except ValueError as exc:
        raise AnsibleFilterError("scram_verifier: %s" % exc)


class FilterModule:
    def filters(self):
        return {"scram_verifier": scram_verifier, "pgpass_escape": passfile_escape}
