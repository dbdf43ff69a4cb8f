"""``lifeboat --query`` and catalog_info's ``query``: JMESPath on the JSON result, as AWS CLI users expect."""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(pg, age_key, backup_root, shop_db):
    return {"connection": pg.connection(), "backup_root": backup_root,
            "encryption": {"mode": "age", "recipients": [age_key[1]]},
            "profiles": {"shop": {"db": shop_db, "tables": ["users"], "globals": False, "retention": {"keep_last": 1}}}}


def test_query_selects_from_the_json_result_and_a_bad_one_runs_nothing(cli, module, pg, shop_db, age_key, backup_root):
    config = _config(pg, age_key, backup_root, shop_db)
    first = json.loads(cli(config, "--query", "id", "backup", "--profile", "shop", check=0).stdout)
    second = json.loads(cli(config, "--json", "backup", "--profile", "shop", check=0).stdout)["id"]
    cli(config, "hold", "--profile", "shop", "--id", first, "--reason", "audit 2026", check=0)

    assert json.loads(cli(config, "--query", "shop.backups[].id", "list", check=0).stdout) == [first, second]
    assert json.loads(cli(config, "--query", "shop.backups[?hold].[id, hold.reason]", "list", check=0).stdout) == [[first, "audit 2026"]]
    assert json.loads(cli(config, "--query", "shop.health.count", "list", check=0).stdout) == 2
    plan = cli(config, "--query", "backups[?action=='keep'].[id, rules]", "prune", "--profile", "shop", "--dry-run", check=0)
    assert json.loads(plan.stdout) == [[second, ["keep_last"]], [first, ["hold: audit 2026"]]]

    # A typo in the expression is a configuration error before anything runs: no backup is taken.
    bad = cli(config, "--query", "shop.backups[?", "backup", "--profile", "shop", check=2)
    assert "--query 'shop.backups[?' is not a valid JMESPath expression" in bad.stderr, bad.stderr
    assert json.loads(bad.stdout)["ok"] is False
    assert len([n for n in os.listdir(os.path.join(backup_root, "shop")) if not n.startswith(".")]) == 2

    info = module("catalog_info", dict(backup_root=backup_root, query="shop.backups[?hold].id"))
    assert info["query_result"] == [first] and "shop" in info["profiles"]
    wrong = module("catalog_info", dict(backup_root=backup_root, query="[[["))
    assert wrong.failed and "query '[[[' is not a valid JMESPath expression" in wrong["msg"]


def test_query_without_jmespath_is_one_clear_error(pg, shop_db, age_key, backup_root, tmp_path):
    # The only fault injected: a jmespath package that cannot be imported, as on a host without python3-jmespath.
    fake = tmp_path / "nojmespath" / "jmespath"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named jmespath')\n")
    path = tmp_path / "lifeboat.yml"
    path.write_text(json.dumps(_config(pg, age_key, backup_root, shop_db)))
    path.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(fake.parent))
    proc = subprocess.run([os.path.join(REPO, ".venv", "bin", "python"), os.path.join(REPO, "bin", "lifeboat"), "--config", str(path),
                           "--query", "shop", "backup", "--profile", "shop"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("lifeboat: --query needs the Python package jmespath on this host (Debian: apt install "
                                   "python3-jmespath; pip: jmespath)")
    assert not os.path.exists(os.path.join(backup_root, "shop"))
