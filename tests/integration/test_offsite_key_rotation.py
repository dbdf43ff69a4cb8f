"""Offsite access key rotation against a real SeaweedFS whose IAM API takes writes (-s3.iam.readOnly=false).

The rotated user lives in the filer, created through IAM by the admin of -s3.config (identities there are static:
IAM changes to them are silently ignored). Every test gets a bucket and an IAM user of its own.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError
from seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS
from test_rotation import CmdlineSampler

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = SeaweedFS(str(tmp_path_factory.mktemp("seaweed")), iam=True).start()
    yield server
    server.stop()


@pytest.fixture
def user(s3):
    """(bucket, IAM user, access key id, secret key): a user allowed list/get/put/delete on its bucket only."""
    bucket = s3.bucket()
    name, key_id, secret = s3.iam_user(bucket)
    return bucket, name, key_id, secret


def host_config(tmp_path, s3, bucket, key_id, secret, **extra):
    """A host's /etc/lifeboat/lifeboat.yml as role agent writes it: the offsite key in the top-level section, 0600."""
    path = tmp_path / "lifeboat.yml"
    data = {"backup_root": str(tmp_path / "backups"), "encryption": {"mode": "none"},
            "offsite": dict(s3.target(bucket, access_key=key_id, secret_key=secret), prefix="lifeboat")}
    data.update(extra)
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def offsite_of(path):
    import yaml

    return yaml.safe_load(path.read_text())["offsite"]


def works(s3, bucket, key_id, secret):
    """List, put and get with one key; raises ClientError when S3 refuses it."""
    client = s3.client_of(key_id, secret)
    client.list_objects_v2(Bucket=bucket, Prefix="lifeboat/")
    client.put_object(Bucket=bucket, Key="lifeboat/check-%s" % key_id, Body=b"works")
    return client.get_object(Bucket=bucket, Key="lifeboat/check-%s" % key_id)["Body"].read() == b"works"


def refusal(s3, bucket, key_id, secret, wait=5):
    """The S3 error code a key gets (it may take a moment to be refused everywhere); None if it keeps working."""
    deadline = time.monotonic() + wait
    while True:
        try:
            s3.client_of(key_id, secret).list_objects_v2(Bucket=bucket)
        except ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def lifeboat(*args, env=None):
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "lifeboat")] + list(args), capture_output=True,
                          text=True, timeout=300, check=False, env=env)


def test_module_rotates_in_check_mode_run_and_rerun_and_the_old_key_is_refused(module, s3, user, tmp_path):
    """As a scheduled task runs it: no key given (the host's file holds the one in force), no admin (the key rotates
    itself, its user found by GetUser); nothing secret reaches the module's arguments."""
    bucket, name, old_id, old_secret = user
    config = host_config(tmp_path, s3, bucket, old_id, old_secret)
    before = config.read_bytes()
    args = dict(s3.target(bucket), force=True, lifeboat_config=str(config), backup_root=str(tmp_path / "backups"))
    del args["access_key"], args["secret_key"]

    checked = module("rotate_offsite_key", args, check=True)
    assert not checked.failed and checked.changed and checked["due"] and not checked["rotated"], checked.result
    assert checked["active_key_id"] == old_id and checked["consumers"] == [str(config)]
    assert config.read_bytes() == before and s3.key_ids(name) == [old_id]

    sampler = CmdlineSampler()
    sampler.start()
    try:
        rotated = module("rotate_offsite_key", args)
    finally:
        sampler.done.set()
    assert not rotated.failed and rotated.changed and rotated["rotated"], rotated.result
    new_id = rotated["active_key_id"]
    assert new_id != old_id and rotated["retired_key_id"] == old_id and rotated["user"] == name
    assert rotated["rotated_at"] and rotated["next_due"] > rotated["rotated_at"]
    assert len(rotated["tests"]) == 2 and "put, get (bytes compared) and delete" in rotated["tests"][1]
    assert s3.key_ids(name) == [new_id]
    held = offsite_of(config)
    new_secret = held["secret_key"]
    assert held["access_key"] == new_id and new_secret != old_secret and len(new_secret) >= 16
    assert os.stat(config).st_mode & 0o777 == 0o600
    assert works(s3, bucket, new_id, new_secret)
    assert refusal(s3, bucket, old_id, old_secret) == ("InvalidAccessKeyId", 403)
    assert s3.keys(bucket, "lifeboat/.lifeboat-key-probe") == []  # the probe object is gone

    rerun = module("rotate_offsite_key", dict(args, force=False))  # SeaweedFS keeps no CreateDate: as recorded
    assert not rerun.failed and not rerun.changed and not rerun["rotated"] and not rerun["due"], rerun.result
    assert rerun["active_key_id"] == new_id and s3.key_ids(name) == [new_id]

    audit = open(tmp_path / "backups" / ".log" / "audit.jsonl").read()
    lines = [json.loads(line) for line in audit.splitlines()]
    assert [(a["action"], a["result"], a["target"]) for a in lines] == [("rotate", "ok", "offsite:%s" % name)] * 2
    assert "rotated to %s" % new_id in lines[0]["detail"] and "retired %s" % old_id in lines[0]["detail"]
    metrics = open(tmp_path / "backups" / ".metrics" / ("lifeboat_credential_offsite_%s.prom" % name)).read()
    assert 'lifeboat_credential_last_rotation_timestamp_seconds{role="offsite:%s"}' % name in metrics
    assert 'lifeboat_credential_age_seconds{role="offsite:%s"}' % name in metrics
    output = "".join(run.proc.stdout + run.proc.stderr for run in (checked, rotated, rerun))
    for secret in (new_secret, old_secret):
        assert secret not in output and secret not in audit and secret not in metrics
        assert not any(secret.encode() in argv for argv in sampler.samples)


def test_cli_rotates_the_hosts_key_and_a_real_push_uses_it(s3, user, tmp_path, pg, shop_db):
    """lifeboat rotate-offsite-key on the host, admin credentials from a 0600 file; then backup + push with the new key."""
    bucket, name, old_id, old_secret = user
    profiles = {"shop": {"db": shop_db}}
    config = host_config(tmp_path, s3, bucket, old_id, old_secret, connection=pg.connection(), profiles=profiles)
    admin = tmp_path / "iam-admin.env"
    admin.write_text("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n" % (ACCESS_KEY, SECRET_KEY))
    admin.chmod(0o644)
    loose = lifeboat("--config", str(config), "rotate-offsite-key", "--user", name, "--admin-file", str(admin), "--force")
    assert loose.returncode == 2 and "others may read it" in loose.stderr, loose.stderr
    admin.chmod(0o600)

    planned = lifeboat("--config", str(config), "--json", "rotate-offsite-key", "--user", name, "--admin-file", str(admin),
                       "--force", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["due"] and s3.key_ids(name) == [old_id]
    sampler = CmdlineSampler()
    sampler.start()
    try:
        proc = lifeboat("--config", str(config), "rotate-offsite-key", "--user", name, "--admin-file", str(admin), "--force")
    finally:
        sampler.done.set()
    assert proc.returncode == 0, proc.stderr
    held = offsite_of(config)
    assert "rotated the offsite access key of IAM user %s: %s in force, %s deleted" % (name, held["access_key"], old_id) in proc.stdout
    assert s3.key_ids(name) == [held["access_key"]]
    for secret in (held["secret_key"], old_secret, SECRET_KEY):
        assert secret not in proc.stdout + proc.stderr
        assert not any(secret.encode() in argv for argv in sampler.samples)
    again = lifeboat("--config", str(config), "--json", "rotate-offsite-key", "--user", name, "--admin-file", str(admin))
    assert again.returncode == 0 and not json.loads(again.stdout)["changed"], again.stderr

    backup = lifeboat("--config", str(config), "backup", "--profile", "shop")
    assert backup.returncode == 0, backup.stderr
    push = lifeboat("--config", str(config), "--json", "push", "--profile", "shop")
    assert push.returncode == 0, push.stderr
    pushed = json.loads(push.stdout)["pushed"][0]
    assert pushed["changed"] and "manifest.json" in pushed["uploaded"]
    assert any(k.endswith("/manifest.json") for k in s3.keys(bucket, "lifeboat/"))


def test_a_failing_test_step_deletes_the_new_key_leaves_the_old_one_and_posts_the_webhook(engine, s3, tmp_path, receiver):
    """A user that may list and get but not put: the new key fails its test; nothing changes but the record."""
    bucket = s3.bucket()
    name, old_id, old_secret = s3.iam_user(bucket, actions=("s3:ListBucket", "s3:GetObject"))
    path = host_config(tmp_path, s3, bucket, old_id, old_secret)
    before = path.read_bytes()
    config = engine.config.validate_config(dict(json.loads(before), notify={"webhook_url": receiver.url("ok", "hook")}))
    with pytest.raises(engine.errors.OffsiteError) as failure:
        engine.rotate_offsite_key.rotate_key(config, user=name, force=True, config_path=str(path),
                                             admin={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})
    message = str(failure.value)
    assert message.startswith("Failed to rotate the offsite access key %s of IAM user %s: testing the new key: "
                              "cannot upload s3://%s/lifeboat/.lifeboat-key-probe-" % (old_id, name, bucket)), message
    assert "access denied" in message and "stays in force" in message
    assert path.read_bytes() == before
    assert s3.key_ids(name) == [old_id]
    assert works_to_list(s3, bucket, old_id, old_secret)
    (hook,) = receiver.to("/ok/hook")
    body = json.loads(hook["body"])
    assert body["status"] == "failure" and "rotate-offsite-key:%s" % name in body["summary"]
    assert "testing the new key" in body["error"]
    audit = open(os.path.join(config["log_dir"], "audit.jsonl")).read()
    last = json.loads(audit.splitlines()[-1])
    assert last["action"] == "rotate" and last["result"] == "failed" and "testing the new key" in last["error"]
    assert last["target"] == "offsite:%s" % name
    assert old_secret not in audit and old_secret not in hook["body"] and old_secret not in message


def test_a_bucket_that_does_not_exist_fails_the_test_too(engine, s3, user, tmp_path):
    bucket, name, old_id, old_secret = user
    path = host_config(tmp_path, s3, "no-such-bucket-%s" % name, old_id, old_secret)
    before = path.read_bytes()
    config = engine.config.load_config_file(str(path))
    # SeaweedFS answers a user without rights on a bucket that does not exist with 403 AccessDenied, as AWS does
    with pytest.raises(engine.errors.OffsiteError, match="testing the new key: cannot list s3://no-such-bucket-.*access denied"):
        engine.rotate_offsite_key.rotate_key(config, user=name, force=True, config_path=str(path),
                                             admin={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})
    assert path.read_bytes() == before and s3.key_ids(name) == [old_id]
    assert works(s3, bucket, old_id, old_secret)


def test_a_user_with_two_keys_is_refused_naming_the_key_to_delete(engine, s3, user, tmp_path):
    bucket, name, old_id, old_secret = user
    spare = s3.iam().create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    path = host_config(tmp_path, s3, bucket, old_id, old_secret)
    config = engine.config.load_config_file(str(path))
    for check_mode in (True, False):
        with pytest.raises(engine.errors.ConfigError) as refused:
            engine.rotate_offsite_key.rotate_key(config, user=name, force=True, config_path=str(path), check_mode=check_mode,
                                                 admin={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})
        assert "already has 2 access keys" in str(refused.value)
        assert "--access-key-id %s" % spare in str(refused.value)
    assert s3.key_ids(name) == sorted([old_id, spare])


def works_to_list(s3, bucket, key_id, secret):
    s3.client_of(key_id, secret).list_objects_v2(Bucket=bucket)
    return True


def test_rotate_credentials_playbook_rotates_the_key_the_host_pushes_with(s3, user, tmp_path, receiver):
    """Playbook rotate_credentials with rotate_credentials_offsite, as a monthly AWX schedule runs it: the inventory
    still holds the key of the agent role's first run; the host's configuration holds the one in force and is the key
    rotated. Then a rerun within max_age changes nothing, and a forced run against a bucket the user may not reach fails
    the host naming the offsite key, posts the inventory's webhook and leaves the key in force. At -vvv no secret shows."""
    import getpass

    from conftest import VENV_BIN, ansible_env

    bucket, name, old_id, old_secret = user
    config = host_config(tmp_path, s3, bucket, old_id, old_secret)
    inventory_offsite = dict(s3.target(bucket, access_key=old_id, secret_key=old_secret), prefix="lifeboat")
    settings = {"rotate_credentials_hosts": "localhost", "agent_user": getpass.getuser(), "ansible_become_method": "su",
                "agent_offsite": inventory_offsite, "agent_backup_root": str(tmp_path / "backups"),
                "agent_log_dir": str(tmp_path / "log"), "agent_metrics_dir": str(tmp_path / "metrics"),
                "agent_notify": {"webhook_url": receiver.url("ok", "hook")},
                "rotate_credentials_offsite": {"lifeboat_config": str(config), "force": True}}

    def play(**overrides):
        extra = tmp_path / "extra.json"
        extra.write_text(json.dumps(dict(settings, **overrides)))
        extra.chmod(0o600)
        return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", "rotate_credentials.yml"),
                               "-i", os.path.join(REPO, "inventories", "local"), "-e", "@" + str(extra), "-vvv"],
                              capture_output=True, text=True, timeout=300, check=False,
                              env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))

    first = play()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    held = offsite_of(config)
    assert held["access_key"] != old_id and s3.key_ids(name) == [held["access_key"]]
    assert "offsite key of %s: active %s, rotated True" % (name, held["access_key"]) in first.stdout
    assert "deleted %s" % old_id in first.stdout
    assert refusal(s3, bucket, old_id, old_secret) is not None and works(s3, bucket, held["access_key"], held["secret_key"])

    rerun = play(rotate_credentials_offsite={"lifeboat_config": str(config)})
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "offsite key of %s: active %s, rotated False" % (name, held["access_key"]) in rerun.stdout
    assert offsite_of(config) == held and receiver.requests == []

    denied = play(agent_offsite=dict(inventory_offsite, bucket="no-such-bucket-%s" % name))
    assert denied.returncode != 0
    assert "Credential rotation failed on localhost for the offsite key (the report above says what failed" in denied.stdout
    assert offsite_of(config) == held and s3.key_ids(name) == [held["access_key"]]
    (hook,) = receiver.to("/ok/hook")
    assert "rotate-offsite-key:" in json.loads(hook["body"])["summary"]
    for secret in (held["secret_key"], old_secret):
        assert secret not in first.stdout + first.stderr + rerun.stdout + denied.stdout + denied.stderr + hook["body"]

    # A later site run: role agent, whose inventory still holds the deleted key, keeps the key the host rotated to.
    site = tmp_path / "site.yml"
    site.write_text(SITE_OFFSITE)
    given_new = dict(inventory_offsite, access_key="AKIAGIVENAFTERLEAK", secret_key="given-after-a-leak")
    for inventory_key, kept in ((inventory_offsite, held), (dict(inventory_offsite, **{k: held[k] for k in ("access_key", "secret_key")}), held),
                                (given_new, given_new),  # a key no rotation deleted: the inventory's choice wins
                                (dict(inventory_offsite, bucket="elsewhere"), dict(inventory_offsite, bucket="elsewhere"))):
        extra = tmp_path / "site.json"
        extra.write_text(json.dumps({"agent_offsite": inventory_key, "agent_backup_root": str(tmp_path / "backups"),
                                     "__agent_config_file": str(config)}))
        extra.chmod(0o600)
        run = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), str(site), "-i", os.path.join(REPO, "inventories", "local"),
                              "-e", "@" + str(extra)], capture_output=True, text=True, timeout=300, check=False,
                             env=ansible_env(ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
        assert run.returncode == 0, run.stdout[-3000:]
        assert "configured key: %s" % kept["access_key"] in run.stdout, run.stdout[-3000:]
        assert ("%s, rotated on this host, stays in force" % held["access_key"] in run.stdout) == (kept["access_key"] != inventory_key["access_key"])
        assert held["secret_key"] not in run.stdout + run.stderr


SITE_OFFSITE = """
- name: The offsite part of role lifeboat.backup.agent's configuration step
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Choose the offsite key
      ansible.builtin.include_role:
        name: lifeboat.backup.agent
        tasks_from: offsite_in_force.yml
    - name: Show the key id chosen (never the secret)
      ansible.builtin.debug:
        msg: "configured key: {{ __agent_offsite_in_force.access_key }}"
"""
