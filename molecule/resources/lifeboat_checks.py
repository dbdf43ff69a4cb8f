"""Helpers shared by the scenarios' testinfra tests: cron entries and running them like cron does."""

import json
import os
import re
import shlex

CRON_FILE = "/etc/cron.d/lifeboat"
MARKER = "#Ansible: lifeboat %s "  # the job kind: profile (the scheduled backup) or drill
USER = "lifeboat"
# The basic-auth user the scenarios give the monitoring role (its bcrypt hash is in their molecule.yml).
SCRAPE_USER, SCRAPE_PASSWORD = "prometheus", "molecule-only-scrape-password"
# cron runs jobs with /bin/sh -c, a minimal PATH and the user's home and name only.
CRON_ENV = "env -i PATH=/usr/bin:/bin HOME=/var/lib/lifeboat LOGNAME=lifeboat SHELL=/bin/sh"


def cron_entries(host, kind="profile"):
    """Profile name -> (schedule, user, command) of every entry of that kind the role manages."""
    lines = host.file(CRON_FILE).content_string.splitlines()
    entries = {}
    for marker, line in zip(lines, lines[1:]):
        if not marker.startswith(MARKER % kind):
            continue
        fields = line.split()
        count = 1 if fields[0].startswith("@") else 5
        schedule = " ".join(fields[:count])
        user, command = fields[count], line.split(None, count + 1)[count + 1]
        entries[marker[len(MARKER % kind):]] = (schedule, user, command)
    return entries


def run_as_cron(host, command):
    """Run a cron entry's exact command as the backup user, the way cron would."""
    return host.run("runuser -u %s -- %s /bin/sh -c %s" % (USER, CRON_ENV, shlex.quote(command)))


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def lifeboat(host, *args):
    """Run the lifeboat command as the backup user with --json; returns the parsed result."""
    result = host.run("runuser -u %s -- /usr/local/bin/lifeboat --json %s" % (USER, " ".join(shlex.quote(a) for a in args)))
    assert result.rc == 0, result.stderr
    return json_lines(result.stdout)[-1]


def backups(host, profile, root="/var/backups/lifeboat"):
    """Backup ids of a profile that have a manifest (a backup without one does not exist)."""
    listing = host.run("ls -1 %s/%s" % (root, profile))
    ids = [name for name in listing.stdout.split() if re.match(r"^\d{8}T\d{6}Z", name) and not name.endswith(".partial")]
    return [i for i in ids if host.file(os.path.join(root, profile, i, "manifest.json")).exists]


def psql(host, db, sql, user="postgres"):
    result = host.run("runuser -u %s -- psql -XAtq -d %s -c %s" % (user, db, shlex.quote(sql)))
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def row_counts(host, db, tables):
    return dict((t, int(psql(host, db, "SELECT count(*) FROM %s" % t))) for t in tables)


def scrape(host, port, password=SCRAPE_PASSWORD, scheme="https"):
    """(HTTP status, body) of GET /metrics; the credentials go to curl on stdin (-K -), not in its argv."""
    config = 'user = "%s:%s"' % (SCRAPE_USER, password) if password else ""
    result = host.run("printf '%%s\\n' %s | curl -sS -k -K - -o /var/tmp/scrape.out -w '%%{http_code}' %s://127.0.0.1:%d/metrics"
                      % (shlex.quote(config), scheme, port))
    body = host.file("/var/tmp/scrape.out").content_string if host.file("/var/tmp/scrape.out").exists else ""
    host.run("rm -f /var/tmp/scrape.out")
    return result.stdout.strip(), body


def samples(body, name):
    """label text -> value of every sample of metric ``name``."""
    return dict((m.group(1) or "", float(m.group(2)))
                for m in re.finditer(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), body, re.M))
