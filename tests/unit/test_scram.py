"""The client-side SCRAM-SHA-256 verifier equals PostgreSQL's own, byte for byte.

The vector was taken from a PostgreSQL 15 server: ``ALTER ROLE t PASSWORD 'hello-world'`` stored the verifier below
(random salt) in pg_authid.rolpassword. tests/integration/test_rotation.py repeats this against the live server.
"""

import os

import pytest

SERVER_VERIFIER = ("SCRAM-SHA-256$4096:Xm2QIyUO12fT74a8Ad9WSg==$hlGyO+UFU8eG8bQqugEeydc7mRs1yZdufqxr2wzeKX8="
                   ":GIA3d78LnLurx/bZjrLDnXJHnuRA37ApH67fQA+T+kI=")


def test_verifier_with_the_servers_salt_is_the_servers_verifier(engine):
    scram = engine.scram
    iterations, salt, _stored, _server = scram.parse(SERVER_VERIFIER)
    assert iterations == 4096
    assert scram.verifier("hello-world", salt=salt) == SERVER_VERIFIER
    assert scram.matches("hello-world", SERVER_VERIFIER)
    assert not scram.matches("hello-worle", SERVER_VERIFIER)


def test_fresh_verifiers_have_random_salts_and_never_hold_the_password(engine):
    scram = engine.scram
    first, second = scram.verifier("a secret"), scram.verifier("a secret")
    assert first != second and "a secret" not in first
    assert scram.matches("a secret", first) and scram.matches("a secret", second)
    assert len(scram.parse(first)[1]) == 16


@pytest.mark.parametrize("password", ["", "caf\u00e9", "tab\there"])
def test_passwords_saslprep_would_change_are_refused(engine, password):
    with pytest.raises(ValueError):
        engine.scram.verifier(password)


@pytest.mark.parametrize("password, works", [("a:b\\c'd", True), ("pässword", False)])
def test_the_scram_verifier_filter_is_the_engines_verifier_and_names_what_it_refuses(engine, tmp_path, password, works):
    """The filter roles use (monitoring's exporter login), through Ansible's own templar."""
    import json
    import subprocess

    from tests.conftest import VENV_BIN, ansible_env

    extra = tmp_path / "password.json"
    extra.write_text(json.dumps({"pw": password}))
    run = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", "-e", "@%s" % extra, "-m", "ansible.builtin.debug",
                          "-a", "msg={{ pw | lifeboat.backup.scram_verifier }}"],
                         capture_output=True, text=True, timeout=120, check=False, env=ansible_env(ANSIBLE_NOCOLOR="1"))
    if not works:
        assert run.returncode != 0 and "only non-empty printable ASCII" in run.stdout + run.stderr
        return
    assert run.returncode == 0, run.stdout + run.stderr
    (verifier,) = [w.strip('",') for w in run.stdout.split() if w.startswith('"SCRAM-SHA-256$')]
    assert engine.scram.matches(password, verifier) and password not in run.stdout


def test_the_pgpass_escape_filter_escapes_as_libpq_reads_it(tmp_path):
    """Roles write passfile lines through it; Jinja string literals would keep their backslashes."""
    import base64
    import json
    import subprocess

    from tests.conftest import VENV_BIN, ansible_env

    extra = tmp_path / "password.json"
    extra.write_text(json.dumps({"pw": "a:b\\c"}))
    run = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", "-e", "@%s" % extra, "-m", "ansible.builtin.debug",
                          "-a", "msg={{ pw | lifeboat.backup.pgpass_escape | b64encode }}"],
                         capture_output=True, text=True, timeout=120, check=False, env=ansible_env(ANSIBLE_NOCOLOR="1"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert base64.b64encode(b"a\\:b\\\\c").decode() in run.stdout
