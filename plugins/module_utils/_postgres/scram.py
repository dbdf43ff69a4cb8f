# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers computed on the client, in PostgreSQL's own stored form.

``ALTER ROLE ... PASSWORD '<verifier>'`` stores the verifier as it is, so the plaintext never travels to the
server, its log or pg_stat_statements. The form is what pg_authid.rolpassword holds (RFC 5802 / 7677):

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations); ClientKey = HMAC(SaltedPassword, "Client Key");
StoredKey = SHA-256(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key").

PostgreSQL SASLpreps the password first; for printable ASCII that changes nothing. Other passwords are refused
here rather than hashed differently from the server (the passwords lifeboat creates are ASCII).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re

ITERATIONS = 4096  # PostgreSQL's scram_iterations default
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
_FORM = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _prepared(password):
    if not password or any(not (0x20 <= ord(c) < 0x7F) for c in password):
        raise ValueError("only non-empty printable ASCII passwords get a client-side SCRAM verifier")
    return password.encode("ascii")


def keys(password, salt, iterations=ITERATIONS):
    """(StoredKey, ServerKey) for ``password`` with ``salt`` (bytes)."""
    salted = hashlib.pbkdf2_hmac("sha256", _prepared(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def verifier(password, salt=None, iterations=ITERATIONS):
    """The verifier PostgreSQL would store for ``password``; a fresh random salt unless one is given."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored, server = keys(password, salt, iterations)
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, _b64(salt), _b64(stored), _b64(server))


def parse(text):
    """(iterations, salt bytes, StoredKey, ServerKey) of a stored verifier; None when it is not one."""
    match = _FORM.match(text or "")
    if not match:
        return None
    return (int(match.group(1)),) + tuple(base64.b64decode(match.group(i)) for i in (2, 3, 4))


def matches(password, text):
    """True when ``text`` (as pg_authid holds it) is a verifier of ``password``."""
    parts = parse(text)
    if parts is None:
        return False
    iterations, salt, stored, server = parts
    mine = keys(password, salt, iterations)
    return hmac.compare_digest(mine[0], stored) and hmac.compare_digest(mine[1], server)
