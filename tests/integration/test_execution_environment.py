"""AWX fit: the collection's execution-environment metadata, as ansible-builder reads it, and the
configuration-as-code for credentials, job templates and schedules (no image build is possible here)."""

import os
import shutil
import subprocess

import yaml

from tests.conftest import COLLECTIONS, REPO, VENV_BIN

AWX = os.path.join(REPO, "extensions", "awx")


def builder(*args, cwd=REPO):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-builder")] + list(args), capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_introspect_finds_the_python_and_system_dependencies():
    found = yaml.safe_load(builder("introspect", "--sanitize", COLLECTIONS).split("\n", 1)[1])
    python = [line.split()[0] for line in found["python"]]
    assert {"psycopg2-binary>=2.9", "boto3>=1.26", "jmespath>=1.0"} <= set(python)
    system = [line.split("#")[0].strip() for line in found["system"]]
    for package in ("zstd", "age", "postgresql-client"):
        assert any(line.startswith(package + " ") for line in system), (package, system)


def test_the_ee_definition_makes_a_build_context(tmp_path):
    for name in ("execution-environment.yml", "requirements.yml"):
        shutil.copy(os.path.join(AWX, name), str(tmp_path))
    builder("create", "-f", "execution-environment.yml", "-c", "context", cwd=str(tmp_path))
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert "ansible-galaxy" in containerfile and "introspect" in containerfile
    galaxy = yaml.safe_load((tmp_path / "context" / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": "lifeboat.backup"}]


class _Loader(yaml.SafeLoader):
    """Reads Ansible's !unsafe as a plain string (what the dispatch play passes on untouched)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def test_credentials_templates_and_schedules_fit_together():
    with open(os.path.join(AWX, "controller.yml")) as handle:
        controller = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a safe loader with one extra tag
    types = {t["name"]: t for t in controller["controller_credential_types"]}
    for kind in types.values():
        for field in kind["inputs"]["fields"]:
            if any(word in field["id"] for word in ("password", "secret", "identity")):
                assert field.get("secret") is True, (kind["name"], field)
    credentials = {c["name"]: c for c in controller["controller_credentials"]}
    assert {c["credential_type"] for c in credentials.values()} <= set(types)
    for template in controller["controller_templates"]:
        assert os.path.exists(os.path.join(REPO, template["playbook"])), template["playbook"]
        assert set(template["credentials"]) <= set(credentials)
        assert not any("password" in key or "secret" in key for key in template.get("extra_vars", {}))
    schedules = {s["unified_job_template"]: s["rrule"] for s in controller["controller_schedules"]}
    assert "FREQ=DAILY" in schedules["lifeboat daily backup"]
    assert "FREQ=MONTHLY;INTERVAL=3" in schedules["lifeboat quarterly drill"]
    assert "FREQ=MONTHLY;INTERVAL=1" in schedules["lifeboat monthly credential rotation"]
