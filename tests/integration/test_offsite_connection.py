"""amazon.aws's connection options for offsite: validate_certs and aws_ca_bundle against a real TLS endpoint (a TLS
front of the test's own in front of SeaweedFS, with a private CA), aws_profile from a real AWS config file."""

import os
import socket
import ssl
import subprocess
import threading

import pytest

from tests.integration.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()


def _openssl(directory, *args):
    subprocess.run(["openssl"] + list(args), cwd=directory, check=True, capture_output=True)


class TLSFront:
    """HTTPS on a loopback port, forwarding every connection to an HTTP port: the store behind a private CA."""

    def __init__(self, directory, backend_port):
        _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
                 "-keyout", "ca.key", "-out", "ca.crt")
        _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "tls.key",
                 "-out", "tls.csr")
        with open(os.path.join(directory, "san.ext"), "w") as handle:
            handle.write("subjectAltName=IP:127.0.0.1\n")
        _openssl(directory, "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", "san.ext", "-out", "tls.crt")
        self.ca = os.path.join(directory, "ca.crt")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key"))
        self.backend_port = backend_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = "https://127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # the client refused our certificate: what the test wants to see
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        threading.Thread(target=self._pump, args=(backend, client), daemon=True).start()
        self._pump(client, backend)

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


@pytest.fixture(scope="module")
def tls_s3(s3, tmp_path_factory):
    front = TLSFront(str(tmp_path_factory.mktemp("tls")), s3.ports["s3"])
    yield front
    front.close()


def _listing(engine, target):
    return engine.s3.Remote(target).list("")


def test_tls_endpoint_checked_with_the_ca_bundle_or_not_at_all(engine, s3, tls_s3):
    bucket = s3.bucket()
    target = s3.target(bucket, endpoint_url=tls_s3.endpoint)
    with pytest.raises(engine.errors.OffsiteError, match="certificate verify failed"):
        _listing(engine, target)  # a private CA is not trusted by default
    assert _listing(engine, dict(target, aws_ca_bundle=tls_s3.ca)) == {}
    assert _listing(engine, dict(target, validate_certs=False)) == {}


def test_aws_profile_from_the_aws_config_files(engine, s3, tmp_path, monkeypatch):
    bucket = s3.bucket()
    credentials = tmp_path / "credentials"
    credentials.write_text("[lifeboat-test]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (ACCESS_KEY, SECRET_KEY))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    target = dict(s3.target(bucket, aws_profile="lifeboat-test"), access_key=None, secret_key=None)
    assert _listing(engine, target) == {}
    with pytest.raises(engine.errors.OffsiteError, match="aws_profile: the AWS profile 'nobody' is not in"):
        _listing(engine, dict(target, aws_profile="nobody"))
    with pytest.raises(engine.errors.OffsiteError, match="set aws_profile or access_key and secret_key, not both"):
        _listing(engine, s3.target(bucket, aws_profile="lifeboat-test"))


def test_offsite_module_takes_the_options(module, s3, backup_root, tls_s3):
    bucket = s3.bucket()
    # pruning an empty remote profile: reaches the bucket over TLS, changes nothing
    args = dict(s3.target(bucket, endpoint_url=tls_s3.endpoint, aws_ca_bundle=tls_s3.ca), state="pruned", profile="shop",
                host="db1", retention={"keep_last": 1}, backup_root=backup_root)
    run = module("offsite", args)
    assert not run.failed and not run.changed, run.result
    refused = module("offsite", dict(args, aws_ca_bundle=None))
    assert refused.failed and "certificate verify failed" in refused["msg"]
