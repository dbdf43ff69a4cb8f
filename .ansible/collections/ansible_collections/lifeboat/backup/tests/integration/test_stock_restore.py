"""README's "Restoring with the stock tools alone" recipe, run as written: age | zstd | pg_restore, no lifeboat code."""

import os
import re
import subprocess

from conftest import REPO


def recipe():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    part = readme.split("## Restoring with the stock tools alone", 1)[1]
    return re.search(r"```sh\n(.*?)```", part, re.S).group(1)


def table_digest(pg, db, table):
    return pg.psql("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM %s t" % table, db=db).strip()


def test_readme_recipe_restores_a_backup(module, pg, shop_db, age_key, backup_root):
    dumped = module("dump", dict(pg.connection(), db=shop_db, profile="full", backup_root=backup_root, recipients=[age_key[1]]))
    assert not dumped.failed, dumped.result
    backup = dumped["backup"]
    target = shop_db + "_stock"
    script = (recipe()
              .replace("/var/backups/lifeboat/full/20261122T020000Z", backup["path"])
              .replace("shop_restored", target)
              .replace("shop.dump", "%s.dump" % shop_db)
              .replace("key.txt", age_key[0]))
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(pg.port), PGUSER="postgres", PGPASSWORD=pg.password,
               PATH=pg.info["bin_dir"] + os.pathsep + os.environ["PATH"])
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    database = [a for a in backup["artifacts"] if a["kind"] == "database"][0]
    assert proc.stdout.split()[0] == database["sha256"]
    for table in ("users", "orders", "payments", "tickets"):
        assert table_digest(pg, target, table) == table_digest(pg, shop_db, table), table
