"""Consumer files: only our line or keys change, in one rename, private, with the owner asked for."""

import os
import pwd

import pytest


def consumer(engine, **item):
    return engine.consumers.normalize(item, engine.rotate.ENV_KEYS)


def test_passfile_replaces_only_the_line_of_the_rotated_login_first(engine, tmp_path):
    path = tmp_path / "pgpass"
    path.write_text("db1:5432:*:other:keep\\:me\n*:*:*:app_b:old\n")
    item = consumer(engine, type="passfile", path=str(path))
    new = engine.consumers.render(item, path.read_bytes(), "app_b", "pa:ss\\word", ["app_b"]).decode()
    assert new == "*:*:*:app_b:pa\\:ss\\\\word\ndb1:5432:*:other:keep\\:me\n"
    assert engine.consumers.credential_of(item, new.encode()) == ("app_b", "pa:ss\\word")


def test_env_file_keeps_other_keys(engine, tmp_path):
    item = consumer(engine, type="env", path=str(tmp_path / "app.env"))
    new = engine.consumers.render(item, b"APP_MODE=prod\nPGPASSWORD=old\nPGUSER=app_a\n", "app_b", "s3cret", ["app_b"])
    assert new.decode().splitlines() == ["APP_MODE=prod", "PGPASSWORD=s3cret", "PGUSER=app_b"]


def test_write_is_private_atomic_and_owned_as_asked(engine, tmp_path):
    path = tmp_path / "app.env"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    nobody = pwd.getpwnam("nobody")
    owner = "nobody" if os.geteuid() == 0 else None
    item = consumer(engine, type="env", path=str(path), owner=owner)
    engine.consumers.write(item, b"PGPASSWORD=x\n")
    status = os.stat(path)
    assert status.st_mode & 0o777 == 0o600 and path.read_bytes() == b"PGPASSWORD=x\n"
    if owner:
        assert status.st_uid == nobody.pw_uid
    assert sorted(os.listdir(tmp_path)) == ["app.env"]  # no temporary file left


@pytest.mark.parametrize("mode", ["0644", "0604", "0660", "0602"])
def test_modes_that_share_the_password_are_refused(engine, tmp_path, mode):
    with pytest.raises(engine.errors.ConfigError, match="would let others read a password"):
        consumer(engine, type="env", path=str(tmp_path / "x"), mode=mode)


def test_a_symlinked_consumer_is_refused(engine, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "app.env").symlink_to(target)
    with pytest.raises(engine.errors.StorageError, match="symbolic link"):
        engine.consumers.write(consumer(engine, type="env", path=str(tmp_path / "app.env")), b"PGPASSWORD=x\n")
    assert target.read_text() == ""
