"""community.postgresql's connection options against real servers: ssl_mode, ca_cert, ssl_cert, ssl_key,
connect_params and session_role reach psycopg2 and the client programs (pg_dump through libpq's environment)."""

import os
import subprocess
import uuid

import pytest

from scripts import pgcluster


def _backup(engine, make_config, db, connection, **profile):
    config = make_config({"p": dict(db=db, **profile)}, connection=connection)
    return engine.dump.backup(config, "p", via="test")


@pytest.mark.parametrize("mode", ["disable", "prefer"])
def test_backup_with_ssl_mode_on_a_server_without_tls(engine, make_config, pg, shop_db, mode):
    result = _backup(engine, make_config, shop_db, pg.connection(ssl_mode=mode, connect_params={"target_session_attrs": "read-write"}))
    assert result["id"] and os.path.isfile(os.path.join(result["path"], "manifest.json"))


def test_ssl_mode_require_reaches_libpq(engine, make_config, pg, shop_db):
    with pytest.raises(engine.errors.DatabaseError, match="server does not support SSL"):
        _backup(engine, make_config, shop_db, pg.connection(ssl_mode="require"))


def test_connect_params_with_an_option_of_its_own_is_refused(engine, make_config, pg):
    with pytest.raises(engine.errors.ConfigError, match=r"connection.connect_params: 'sslmode': use ssl_mode instead"):
        make_config({}, connection=pg.connection(connect_params={"sslmode": "require"}))
    with pytest.raises(engine.errors.ConfigError, match=r"'keepalives' is not a libpq keyword pg_dump and pg_restore can"):
        make_config({}, connection=pg.connection(connect_params={"keepalives": 1}))


@pytest.fixture
def role_only_db(pg):
    """A database whose one table only role ``reader_<id>`` may read; ``login_<id>`` (NOINHERIT) may become it."""
    tag = uuid.uuid4().hex[:8]
    db, reader, login = "roledb_" + tag, "reader_" + tag, "login_" + tag
    pg.psql("CREATE ROLE %s NOLOGIN; CREATE ROLE %s LOGIN NOINHERIT PASSWORD 'pw-%s' IN ROLE %s" % (reader, login, tag, reader))
    pg.psql("CREATE DATABASE %s" % db)
    pg.psql("CREATE TABLE ledger (id int PRIMARY KEY, amount numeric); INSERT INTO ledger SELECT g, g FROM generate_series(1, 42) g;"
            "REVOKE ALL ON ledger FROM PUBLIC; GRANT SELECT ON ledger TO %s" % reader, db=db)
    return db, reader, dict(login_host="127.0.0.1", login_port=pg.port, login_user=login, login_password="pw-" + tag)


def test_session_role_gives_pg_dump_the_role_privileges(engine, make_config, role_only_db):
    db, reader, connection = role_only_db
    with pytest.raises(engine.errors.LifeboatError, match="permission denied for table ledger"):
        _backup(engine, make_config, db, connection, globals=False)
    result = _backup(engine, make_config, db, dict(connection, session_role=reader), globals=False)
    assert dict((t["name"], t["rows"]) for t in result["tables"]) == {"ledger": 42}


def test_session_role_through_the_module(module, role_only_db, age_key, backup_root):
    db, reader, connection = role_only_db
    run = module("dump", dict(connection, db=db, session_role=reader, globals=False, backup_root=backup_root,
                              recipients=[age_key[1]]))
    assert run.changed and not run.failed, run.result
    assert run["backup"]["tables"][0]["rows"] == 42


# -- a server that accepts only TLS, with its own CA (a cluster of this module's own: the session's stays plain) --


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def _certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate for role certuser; another CA too."""
    for ca in ("ca", "other_ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=%s" % ca,
                 "-keyout", ca + ".key", "-out", ca + ".crt", cwd=directory)
    for name, subject, extension in (("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                                     ("client", "/CN=certuser", "keyUsage=digitalSignature")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", name + ".key", "-out", name + ".csr",
                 cwd=directory)
        with open(os.path.join(directory, name + ".ext"), "w") as handle:
            handle.write(extension + "\n")
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                 "-extfile", name + ".ext", "-out", name + ".crt", cwd=directory)
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o600)


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory):
    certs = str(tmp_path_factory.mktemp("tls"))
    _certificates(certs)
    cluster = pgcluster.create()
    try:
        data = cluster.info["data"]
        owner = ["-o", pgcluster.SERVER_USER] if os.geteuid() == 0 else []  # the server reads its key as its own user
        for name in ("server.crt", "server.key", "ca.crt"):
            subprocess.run(["install", "-m", "0600"] + owner + [os.path.join(certs, name), os.path.join(data, name)], check=True)
        with open(os.path.join(data, "pg_hba.conf"), "w") as handle:
            handle.write("local all all trust\n"
                         "hostssl all certuser 127.0.0.1/32 cert\n"
                         "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        for setting in ("ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'", "ssl_ca_file = 'ca.crt'"):
            cluster.psql("ALTER SYSTEM SET " + setting)
        cluster.psql("SELECT pg_reload_conf()")
        cluster.psql("CREATE ROLE certuser LOGIN SUPERUSER")
        pgcluster.wait_ready(cluster)
        cluster.psql("CREATE DATABASE tlsdb")
        cluster.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 7)", db="tlsdb")
        yield cluster, certs
    finally:
        cluster.destroy()


def _pg_dump_with_env_of(engine, tls, connection):
    """pg_dump of tlsdb with nothing but the environment the engine gives its client programs."""
    cluster, _certs = tls
    with engine.pg.Session(connection, "tlsdb") as session:
        return subprocess.run([os.path.join(cluster.info["bin_dir"], "pg_dump"), "--schema-only", "--no-password"],
                              env=session.env(), capture_output=True, text=True, check=False)


def test_client_programs_get_the_tls_settings(engine, tls_pg):
    cluster, certs = tls_pg
    verified = cluster.connection(ssl_mode="verify-full", ca_cert=os.path.join(certs, "ca.crt"))
    assert _pg_dump_with_env_of(engine, tls_pg, verified).returncode == 0
    wrong_ca = dict(verified, ca_cert=os.path.join(certs, "other_ca.crt"))
    assert "certificate verify failed" in _pg_dump_with_env_of(engine, tls_pg, wrong_ca).stderr
    plain = _pg_dump_with_env_of(engine, tls_pg, cluster.connection(ssl_mode="disable"))
    assert plain.returncode != 0 and "no encryption" in plain.stderr


def test_backup_over_verified_tls_and_with_a_client_certificate(engine, make_config, tls_pg):
    cluster, certs = tls_pg
    verified = cluster.connection(ssl_mode="verify-full", ca_cert=os.path.join(certs, "ca.crt"))
    result = _backup(engine, make_config, "tlsdb", verified)
    assert dict((t["name"], t["rows"]) for t in result["tables"]) == {"t": 7}

    by_certificate = dict(verified, login_user="certuser", ssl_cert=os.path.join(certs, "client.crt"),
                          ssl_key=os.path.join(certs, "client.key"))
    del by_certificate["login_password"]
    result = _backup(engine, make_config, "tlsdb", by_certificate)
    assert dict((t["name"], t["rows"]) for t in result["tables"]) == {"t": 7}
    with pytest.raises(engine.errors.DatabaseError, match="certificate"):
        _backup(engine, make_config, "tlsdb", dict(by_certificate, ssl_cert=None, ssl_key=None))
