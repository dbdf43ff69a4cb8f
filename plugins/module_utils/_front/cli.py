# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``lifeboat`` command: the on-host front door to the same engine the modules call.

Reads /etc/lifeboat/lifeboat.yml (or --config), prints a short human summary
or, with --json, one JSON object per line (the form cron logs keep). Errors
are one line on stderr and an exit code per kind of failure (see _errors).
Needs only the standard library, psycopg2 and PyYAML.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import signal
import sys

from .._actions import backup as _dump
from .._actions import check_config as _check_config
from .._actions import hold as _hold
from .._actions import identities as _identities
from .._actions import listing as _listing
from .._actions import locate as _locate
from .._actions import drill as _drill
from .._actions import prune as _prune
from .._actions import pull as _offsite_pull
from .._actions import push as _push
from .._actions import remote_prune as _offsite_prune
from .._actions import restore as _restore
from .._actions import rotate as _rotate
from .._actions import rotate_offsite_key as _rotate_key
from .._actions import scheduled_run as _run
from .._actions import verify as _verify
from .._config.schema import DEFAULT_CONFIG_PATH, get_profile, load_config_file
from .._errors import ConfigError, LifeboatError
from .._offsite import remote as _remote
from .._store import catalog as _catalog
from .._store import retention as _retention
from .._stream import scratch as _scratch
from . import query as _query


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def _backup_line(result):
    rows = sum(t["rows"] for t in result.get("tables") or [])
    line = "backup %s of profile %s: %s in %.1fs, %d tables, %d rows -> %s" % (
        result["id"], result["profile"], _size(result["bytes"]), result["duration_seconds"],
        len(result.get("tables") or []), rows, result["path"],
    )
    if result.get("verification"):
        line += "\nverified %s at level %s in %.1fs" % (result["id"], result["verification"]["level"], result["verification"]["duration_seconds"])
    return line


def cmd_backup(config, args):
    get_profile(config, args.profile)
    if args.dry_run:
        plan = _dump.plan(config, args.profile)
        return plan, "would dump %s (profile %s): rows of %d tables, encryption %s -> %s" % (
            plan["database"], args.profile, len(plan["tables"]), plan["encryption"], plan["path"])
    result = _dump.backup(config, args.profile, via="cli", verify=args.verify)
    return result, _backup_line(result)


def _entry(config, args):
    return _catalog.resolve(config["backup_root"], getattr(args, "profile", None), getattr(args, "id", None), getattr(args, "path", None))


def _source(config, args):
    """The backup named by --path, or --profile and --id; --remote reads it from the offsite bucket (needs --profile)."""
    if args.remote and not args.profile:
        raise ConfigError("--remote needs --profile (and optionally --id and --host)")
    return _locate.Source(config, args.profile, args.id, args.path, remote=args.remote, host=args.host, tmp_dir=args.tmp_dir, via="cli")


def cmd_verify(config, args):
    source = _source(config, args)
    result = source.verify(args.level, identity_file=args.identity)
    if source.remote:
        return result, "offsite copy %s (%s) passed %s verification in %.1fs" % (
            result["id"], result["path"], result["level"], result["duration_seconds"])
    return result, "backup %s passed %s verification in %.1fs" % (result["id"], result["level"], result["duration_seconds"])


def cmd_restore(config, args):
    options = _restore.Options(args.target, create=not args.no_create, clean=args.clean, tables=args.table,
                               jobs=args.jobs, globals=args.globals, no_owner=args.no_owner,
                               identity_file=args.identity, tmp_dir=args.tmp_dir,
                               allow_system_target=args.allow_system_target)
    source = _source(config, args)
    if args.dry_run:
        plan = _restore.plan(config, source.record, options).summary()
        text = "would restore backup %s (%s of %s) into %s [%s, target %s, %s]: %d tables, %d rows" % (
            plan["backup_id"], plan["consistent_at"], plan["source_database"], plan["target"], plan["action"],
            plan["target_state"], plan["method"], len(plan["tables"]), plan["rows"])
        return plan, text
    with source.on_disk() as entry:  # a remote backup is downloaded and checked first
        result = _restore.restore(config, entry, options, via="cli")
    return result, "restored backup %s into %s in %.1fs" % (result["backup_id"], result["target"], result["timings"]["total_seconds"])


def cmd_list(config, args):
    report = _listing.report(config["backup_root"], args.profile)
    lines = []
    for name, item in sorted(report.items()):
        health = item["health"]
        age = "%.0fs ago" % health["newest_age_seconds"] if health["newest_age_seconds"] is not None else "never"
        lines.append("%s: %d backups, %s, newest %s, verified %s" % (
            name, health["count"], _size(health["total_bytes"]), age, health["newest_verified_id"] or "none"))
        for backup in item["backups"]:
            verification = backup["verification"] or {}
            mark = ("%s %s" % (verification.get("level"), "ok" if verification.get("ok") else "FAILED")) if verification else "unverified"
            if backup["status"] == _catalog.DAMAGED:  # why it is no backup, on the same line
                mark = backup["error"]
            held = "  held: %s" % backup["hold"]["reason"] if backup.get("hold") else ""
            lines.append("  %-22s %-11s %10s  %s%s" % (backup["id"], backup["status"], _size(backup["bytes"]), mark, held))
    return report, "\n".join(lines) or "no backups under %s" % config["backup_root"]


def cmd_identities(config, args):
    report = _identities.report(config, args.profile)
    lines = []
    for item in report["recipients"]:
        short = item["recipient"][:12] + "..." + item["recipient"][-6:]
        if item["current"]:
            state = "current, opens %d backups" % len(item["opens"])
        elif item["needed_by"]:
            state = "retired, the only way into %d backups (newest %s): keep its identity" % (
                len(item["needed_by"]), max(i.split("/", 1)[1] for i in item["needed_by"]))
        else:
            state = "retired, opens %d backups that a current identity opens too: its identity may go" % len(item["opens"])
        lines.append("%s  %s" % (short, state))
    if report["unencrypted"]:
        lines.append("%d backups are not encrypted" % report["unencrypted"])
    return report, "\n".join(lines) or "no age recipients configured and no encrypted backups"


def _hold_line(result, verb):
    state = verb if result["changed"] else ("is already held" if result["held"] else "is not held")
    line = "backup %s of profile %s %s" % (result["id"], result["profile"], state)
    if result["held"]:
        line += ": %s" % result["hold"]["reason"]
    offsite = result["offsite"]
    if not offsite:
        return line
    if not offsite["offsite"]:
        return line + "\noffsite %s: not there yet; the push will hold it" % offsite["location"]
    if offsite["object_lock"]:
        return line + "\noffsite %s: legal hold %s on %d objects" % (
            offsite["location"], "set" if result["held"] else "lifted", len(offsite["legal_hold"]))
    return line + "\noffsite %s: hold.json %s (the bucket has no Object Lock)" % (
        offsite["location"], "stored" if result["held"] else "removed")


def cmd_hold(config, args):
    result = _hold.hold(config, args.profile, args.id, args.reason, via="cli", check_mode=args.dry_run)
    return result, _hold_line(result, "would be held" if args.dry_run else "held")


def cmd_release(config, args):
    result = _hold.release(config, args.profile, args.id, via="cli", check_mode=args.dry_run)
    return result, _hold_line(result, "would be released" if args.dry_run else "released")


def _prune_lines(result):
    verb = "would delete" if result["check_mode"] else "deleted"
    lines = ["prune of profile %s (%s): %s %d of %d backups (%s), keeping %d" % (
        result["profile"], _retention.describe(result["policy"]), verb, len(result["deleted"]), len(result["backups"]),
        _size(result["freed_bytes"]), len(result["kept"]))]
    for backup in result["backups"]:
        rules = ", ".join(backup["rules"]) or "-"
        lines.append("  %-6s  %-22s %s  %-10s  %s" % (backup["action"], backup["id"], backup["time"], backup["verification"], rules))
    lines += ["  %-6s  %s  (leftover of a dead run)" % ("remove", name) for name in result["leftovers_removed"]]
    lines += ["  %-6s  %s  %s" % ("skip", item["id"], item["reason"]) for item in result["skipped"]]
    lines += ["warning: %s" % warning for warning in result["warnings"]]
    return lines


def cmd_prune(config, args):
    policy = get_profile(config, args.profile)["retention"]
    result = _prune.prune(config, args.profile, policy, check_mode=args.dry_run, via="cli")
    return result, "\n".join(_prune_lines(result))


def _push_line(result):
    if not result["changed"]:
        return "backup %s of profile %s is already offsite at %s" % (result["id"], result["profile"], result["location"])
    verb = "would push" if result.get("check_mode") else "pushed"
    return "%s backup %s of profile %s to %s: %d objects, %s in %.1fs" % (
        verb, result["id"], result["profile"], result["location"], len(result["uploaded"]), _size(result["uploaded_bytes"]),
        result["duration_seconds"])


def cmd_push(config, args):
    if args.all and not args.profile:
        raise ConfigError("--all needs --profile")
    entries = _remote.missing(config, args.profile) if args.all else [_entry(config, args)]
    results = []
    for entry in entries:
        results.append(_push.push(config, entry, via="cli", check_mode=args.dry_run))
        results[-1]["check_mode"] = args.dry_run
    text = "\n".join(_push_line(r) for r in results) or "every backup of profile %s is already offsite" % args.profile
    return {"pushed": results, "changed": any(r["changed"] for r in results)}, text


def cmd_pull(config, args):
    result = _offsite_pull.pull(config, args.profile, args.id, args.host, args.dest, via="cli", check_mode=args.dry_run)
    if not result["changed"]:
        return result, "backup %s of profile %s is already in %s" % (result["id"], args.profile, result["path"])
    return result, "%s backup %s of profile %s (%s) from %s into %s" % (
        "would pull" if args.dry_run else "pulled", result["id"], args.profile, _size(result["bytes"]), result["source"], result["path"])


def cmd_remote_list(config, args):
    result = _remote.listing(config, args.profile, args.host)
    lines = ["%s: %d backups in %s" % (args.profile, len(result["backups"]), result["location"])]
    for backup in result["backups"]:
        lines.append("  %-22s %-11s %10s  %s" % (backup["id"], backup["status"], _size(backup["bytes"]),
                                                 backup.get("time") or backup.get("error", "")))
    return result, "\n".join(lines)


def cmd_remote_prune(config, args):
    policy = _offsite_prune.policy_for(config, args.profile)
    result = _offsite_prune.prune(config, args.profile, policy, host=args.host, check_mode=args.dry_run, via="cli")
    lines = _prune_lines(result)
    return result, "\n".join(["offsite " + lines[0]] + lines[1:])


def cmd_run(config, args):
    report = _run.run_profile(config, args.profile)
    lines = [_backup_line(report["backup"])]
    lines += [_push_line(r) for r in report["offsite"] or []]
    if report["prune"]:
        lines.append(_prune_lines(report["prune"])[0])
    else:
        lines.append("prune skipped: profile %s has no retention policy" % args.profile)
    if report["prune_remote"]:
        lines.append("offsite " + _prune_lines(report["prune_remote"])[0])
    return report, "\n".join(lines)


def _drill_lines(result):
    if result.get("check_mode"):
        return ["would drill profile %s: backup %s of host %s (%s, %s) into %s, checks: %s" % (
            result["profile"], result["backup_id"], result["source_host"], result["consistent_at"], result["location"],
            result["scratch_database"], ", ".join(result["checks"]))]
    lines = ["drill of profile %s passed: backup %s of host %s restored and checked in %.1fs (RTO), RPO %.0fs" % (
        result["profile"], result["backup_id"], result["source_host"], result["rto_seconds"], result["rpo_seconds"])]
    lines += ["  %-26s %s" % (c["name"], {True: "ok", False: "FAILED", None: "skipped"}[c["ok"]]) for c in result["checks"]]
    lines += ["  report: %s" % result["report"].get("html")] if result.get("report") else []
    lines += ["  kept for inspection: %s" % ", ".join(result["kept"])] if result.get("kept") else []
    lines += ["  note: %s" % result["source_note"]] if result.get("source_note") else []
    lines += ["warning: %s" % w for w in result.get("warnings") or []]
    return lines


def cmd_drill(config, args):
    """One drill per profile; every profile runs, the first failure decides the exit code."""
    names = sorted(n for n, p in config["profiles"].items() if p["drill"]) if args.all else args.profile
    if not names:
        raise ConfigError("name a profile (--profile P, repeatable) or --all")
    options = _drill.Options(backup_id=args.id, pick=args.pick, source=args.source, source_host=args.host,
                             identity_file=args.identity, jobs=args.jobs, keep=args.keep, report_dir=args.report_dir,
                             tmp_dir=args.tmp_dir, check_mode=args.dry_run)
    results, lines, errors = [], [], []
    for name in names:
        try:
            results.append(_drill.drill(config, name, options, via="cli"))
            lines += _drill_lines(results[-1])
        except LifeboatError as exc:
            errors.append(exc)
    if errors:
        for line in lines:
            _out(line)
        raise errors[0] if len(errors) == 1 else type(errors[0])("; ".join(str(e) for e in errors))
    return {"drills": results}, "\n".join(lines)


def cmd_check_config(config, args):
    result = _check_config.check(config, connect=getattr(args, "connect", False))
    text = "configuration valid: %d profiles (%s)" % (len(result["profiles"]), ", ".join(result["profiles"]) or "none")
    if "server_version" in result:
        text += "\nserver %(server_version)s reachable; %(pg_dump)s (version %(pg_dump_major)d) can dump it" % result
        text += "".join("\nprofile %(profile)s: offsite bucket reachable (%(location)s)" % b for b in result["offsite"])
    return result, text


def _consumers(config, args):
    """--consumer TYPE:PATH as given; by default where this host's own connection keeps its password."""
    if args.consumer:
        kinds = [item.split(":", 1) for item in args.consumer]
        if any(len(k) != 2 for k in kinds):
            raise ConfigError("--consumer must be TYPE:PATH (passfile, env or lifeboat_config), got %r" % args.consumer)
        return [{"type": kind, "path": os.path.abspath(path)} for kind, path in kinds]
    passfile = config["connection"].get("passfile")
    if passfile and not config["connection"].get("login_password"):
        return [{"type": "passfile", "path": os.path.abspath(passfile)}]
    return [{"type": "lifeboat_config", "path": os.path.abspath(args.config)}]


def cmd_rotate_password(config, args):
    """The backup user rotating its own credential on its host (from cron): in_place, all profiles probed and gated."""
    profiles = args.profile or sorted(config["profiles"])
    db = args.db or (config["profiles"][profiles[0]]["db"] if profiles else config["connection"]["maintenance_db"])
    result = _rotate.rotate(config, via="cli", check_mode=args.dry_run, role=args.role, strategy=args.strategy,
                            max_age=args.max_age, force=args.force, revoke=args.revoke, grace=args.grace,
                            consumers=_consumers(config, args), tests=args.test, db=db, profiles=profiles,
                            state_dir=args.state_dir)
    result.pop("rotated_epoch", None)
    if result["rotated"]:
        text = "rotated the password of %s (%s); consumers written: %s; tested: %s" % (
            result["active_login"], result["strategy"], ", ".join(result["consumers"]) or "none", "; ".join(result["tests"]))
    elif args.dry_run and result["due"]:
        text = "would rotate the password of %s (%s); would write %s" % (
            result["active_login"], result["strategy"], ", ".join(result["consumers"]) or "no consumer")
    else:
        text = "the password of %s is not due until %s" % (result["role"], result["next_due"])
    if result["retired_login"]:
        text += "\n%s login %s (its grace has passed)" % ("would disable" if args.dry_run else "disabled", result["retired_login"])
    for warning in result["warnings"]:
        text += "\nwarning: %s" % warning
    return result, text


ADMIN_ENVIRONMENT = {"access_key": "LIFEBOAT_IAM_ACCESS_KEY_ID", "secret_key": "LIFEBOAT_IAM_SECRET_ACCESS_KEY",
                     "session_token": "LIFEBOAT_IAM_SESSION_TOKEN"}
ADMIN_FILE_KEYS = {"access_key": "AWS_ACCESS_KEY_ID", "secret_key": "AWS_SECRET_ACCESS_KEY", "session_token": "AWS_SESSION_TOKEN"}


def _admin_credentials(path):
    """IAM admin credentials from a KEY=value file (AWS_ACCESS_KEY_ID, ...) or LIFEBOAT_IAM_* variables; never argv."""
    if not path:
        found = dict((k, os.environ.get(v)) for k, v in ADMIN_ENVIRONMENT.items() if os.environ.get(v))
        return found or None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            status = os.fstat(handle.fileno())
            values = dict(line.strip().split("=", 1) for line in handle if "=" in line and not line.startswith("#"))
    except OSError as exc:
        raise ConfigError("--admin-file %s: %s" % (path, exc.strerror or exc))
    if status.st_mode & 0o077:
        raise ConfigError("--admin-file %s: holds a secret key but others may read it (mode %o); chmod 0600 it"
                          % (path, status.st_mode & 0o777))
    found = dict((k, values.get(v, "").strip()) for k, v in ADMIN_FILE_KEYS.items() if values.get(v, "").strip())
    if not found.get("access_key") or not found.get("secret_key"):
        raise ConfigError("--admin-file %s: needs AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... lines" % path)
    return found


def cmd_rotate_offsite_key(config, args):
    """The host's offsite key, rotated when due: its configuration file is the consumer (and --consumer files)."""
    consumers = [{"type": "lifeboat_config", "path": os.path.abspath(args.config)}]
    for item in args.consumer:
        kind, _sep, path = item.partition(":")
        if kind not in ("env", "lifeboat_config") or not path:
            raise ConfigError("--consumer must be env:PATH or lifeboat_config:PATH, got %r" % item)
        consumers.append({"type": kind, "path": os.path.abspath(path)})
    result = _rotate_key.rotate_key(config, via="cli", check_mode=args.dry_run, user=args.user, max_age=args.max_age,
                                    force=args.force, admin=_admin_credentials(args.admin_file),
                                    iam_endpoint_url=args.iam_endpoint_url, consumers=consumers, profile=args.profile,
                                    state_dir=args.state_dir)
    result.pop("rotated_epoch", None)
    if result["rotated"]:
        text = "rotated the offsite access key of IAM user %s: %s in force, %s deleted; consumers written: %s; tested: %s" % (
            result["user"], result["active_key_id"], result["retired_key_id"], ", ".join(result["consumers"]),
            "; ".join(result["tests"]))
    elif args.dry_run and result["due"]:
        text = "would rotate the offsite access key %s of IAM user %s; would write %s" % (
            result["active_key_id"], result["user"], ", ".join(result["consumers"]))
    else:
        text = "the offsite access key %s of IAM user %s is not due until %s" % (
            result["active_key_id"], result["user"], result["next_due"])
    for warning in result["warnings"]:
        text += "\nwarning: %s" % warning
    return result, text


def _which_backup(p):
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--profile", help="profile name (with --id, or the newest backup)")
    group.add_argument("--path", help="a backup directory")
    p.add_argument("--id", help="backup id within the profile (default: newest)")
    p.add_argument("--identity", help="age identity file to decrypt with")
    p.add_argument("--remote", action="store_true", help="read the backup from the offsite bucket (downloaded and checked first)")
    p.add_argument("--host", help="with --remote: host whose backups to read (default: this host)")


def _backup_commands(command):
    """backup, verify, restore, list, prune, run: the backups on this host."""
    p = command("backup", cmd_backup, "take a backup of one profile")
    p.add_argument("--profile", required=True)
    p.add_argument("--verify", choices=("none", "archive"), default="none", help="read the backup back after writing it")
    p.add_argument("--dry-run", action="store_true", help="show what would be dumped, write nothing")

    p = command("verify", cmd_verify, "verify a backup")
    _which_backup(p)
    p.add_argument("--level", choices=_verify.LEVELS, default="archive")
    p.add_argument("--tmp-dir", help="where a backup read with --remote is downloaded to")

    p = command("restore", cmd_restore, "restore a backup")
    _which_backup(p)
    p.add_argument("--target", required=True, help="target database")
    p.add_argument("--no-create", action="store_true", help="restore into an existing database")
    p.add_argument("--clean", action="store_true", help="replace objects in a non-empty existing database")
    p.add_argument("--table", action="append", default=[], help="restore only this table (repeatable)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--globals", action="store_true", help="restore roles and tablespaces first")
    p.add_argument("--no-owner", action="store_true", help="skip ownership and privileges")
    p.add_argument("--tmp-dir", help="where a parallel restore decrypts the archive")
    p.add_argument("--allow-system-target", action="store_true",
                   help="allow a template database or the maintenance database as --target")
    p.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")

    p = command("list", cmd_list, "list backups and their health")
    p.add_argument("--profile")

    p = command("identities", cmd_identities, "which age identity opens which backup, and which retired ones may go")
    p.add_argument("--profile")

    p = command("prune", cmd_prune, "delete the backups of a profile its retention policy no longer keeps")
    p.add_argument("--profile", required=True)
    p.add_argument("--dry-run", action="store_true", help="print each backup, kept or deleted, and the rule; delete nothing")


def _offsite_commands(command):
    """push, pull, remote-list, remote-prune: the copies in the bucket."""
    p = command("push", cmd_push, "copy a backup to the offsite bucket (artifacts first, manifest last)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--profile", help="profile name (with --id, or the newest backup)")
    group.add_argument("--path", help="a backup directory")
    p.add_argument("--id", help="backup id within the profile (default: newest)")
    p.add_argument("--all", action="store_true", help="every complete backup of the profile that is not offsite yet")
    p.add_argument("--dry-run", action="store_true", help="show what would be uploaded, upload nothing")

    p = command("pull", cmd_pull, "download a backup from the offsite bucket and check it against its manifest")
    p.add_argument("--profile", required=True)
    p.add_argument("--id", help="backup id (default: the newest in the bucket)")
    p.add_argument("--host", help="host whose backups to pull (default: this host)")
    p.add_argument("--dest", help="backup root to pull into (default: backup_root); lands in DEST/PROFILE/ID")
    p.add_argument("--dry-run", action="store_true", help="show what would be downloaded, write nothing")

    p = command("remote-list", cmd_remote_list, "list the backups of a profile in the offsite bucket")
    p.add_argument("--profile", required=True)
    p.add_argument("--host", help="host whose backups to list (default: this host)")

    p = command("remote-prune", cmd_remote_prune, "apply the retention policy to the offsite bucket")
    p.add_argument("--profile", required=True)
    p.add_argument("--host", help="host whose backups to prune (default: this host)")
    p.add_argument("--dry-run", action="store_true", help="print each backup, kept or deleted, and the rule; delete nothing")

    p = command("run", cmd_run, "the scheduled run of a profile: backup, verify, follow-ups, prune, notifications")
    p.add_argument("--profile", required=True)


def _operator_commands(command):
    """rotate-password, hold, release, drill: what an operator does beside the schedule."""
    p = command("rotate-password", cmd_rotate_password,
                "rotate this host's database password (default: the backup user, in place, when older than --max-age)")
    p.add_argument("--role", help="role to rotate (default: connection.login_user)")
    p.add_argument("--strategy", choices=_rotate.STRATEGIES, default="in_place")
    p.add_argument("--max-age", default=_rotate.DEFAULT_MAX_AGE, help="rotate only when older (default %(default)s)")
    p.add_argument("--force", action="store_true", help="rotate even when younger than --max-age")
    p.add_argument("--revoke", action="store_true", help="after a compromise: disable the logins, end their sessions, rotate")
    p.add_argument("--grace", default=_rotate.DEFAULT_GRACE, help="alternate: how long the old login keeps working")
    p.add_argument("--consumer", action="append", default=[], metavar="TYPE:PATH",
                   help="file to write the new credential to: passfile, env or lifeboat_config (repeatable; default: "
                        "connection.passfile, else this configuration file)")
    p.add_argument("--test", action="append", default=[], metavar="SQL", help="a boolean SQL check the new login must pass")
    p.add_argument("--profile", action="append", default=[], help="profile to probe and hold (repeatable; default all)")
    p.add_argument("--db", help="database to test the login in (default: the first profile's)")
    p.add_argument("--state-dir", help="rotation state directory (default <backup_root>/.rotation)")
    p.add_argument("--dry-run", action="store_true", help="say whether it is due and what would change; change nothing")

    p = command("rotate-offsite-key", cmd_rotate_offsite_key,
                "rotate this host's offsite access key through the IAM API when older than --max-age: create, test, "
                "switch, delete the old")
    p.add_argument("--user", help="IAM user owning the key (default: the key's own user; needed with admin credentials)")
    p.add_argument("--profile", help="rotate the key of this profile's offsite settings (default: the top level)")
    p.add_argument("--max-age", default=_rotate_key.DEFAULT_MAX_AGE, help="rotate only when older (default %(default)s)")
    p.add_argument("--force", action="store_true", help="rotate even when younger than --max-age")
    p.add_argument("--admin-file", metavar="PATH",
                   help="0600 file with AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY= lines for the IAM calls (default: "
                        "LIFEBOAT_IAM_ACCESS_KEY_ID and LIFEBOAT_IAM_SECRET_ACCESS_KEY, else the key being rotated)")
    p.add_argument("--iam-endpoint-url", help="IAM API URL (default: offsite.endpoint_url when set, else AWS IAM)")
    p.add_argument("--consumer", action="append", default=[], metavar="TYPE:PATH",
                   help="another file to write the new key to: env (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or "
                        "lifeboat_config (repeatable; this configuration file is always written)")
    p.add_argument("--state-dir", help="rotation state directory (default <backup_root>/.rotation)")
    p.add_argument("--dry-run", action="store_true", help="say whether it is due and what would change; change nothing")

    p = command("hold", cmd_hold, "keep one backup whatever the retention policy says (locally and offsite), until released")
    p.add_argument("--profile", required=True)
    p.add_argument("--id", required=True, help="backup id within the profile")
    p.add_argument("--reason", required=True, help="why it is kept, shown by list and prune (e.g. 'legal: 7 years')")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")

    p = command("release", cmd_release, "release a held backup: retention applies to it again")
    p.add_argument("--profile", required=True)
    p.add_argument("--id", required=True, help="backup id within the profile")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")

    p = command("drill", cmd_drill, "disaster-recovery drill: restore a backup into a scratch database, check it, measure RTO and RPO")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--profile", action="append", help="profile to drill (repeatable)")
    group.add_argument("--all", action="store_true", help="every profile with a drill section")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--id", help="backup id to drill")
    pick.add_argument("--pick", choices=_drill.PICKS, help="newest (default) or random within the retention window")
    p.add_argument("--source", choices=_drill.SOURCES, help="offsite (default): the bucket; local: this host's backups (weaker)")
    p.add_argument("--host", help="source host whose backups to drill (default: the profile's drill.source_host, else this host)")
    p.add_argument("--identity", help="age identity file to decrypt with")
    p.add_argument("--jobs", type=int, help="pg_restore jobs (default: the profile's drill.jobs)")
    p.add_argument("--keep", action="store_true", help="keep the scratch database and downloaded files for inspection")
    p.add_argument("--report-dir", help="where reports go (default: report_dir)")
    p.add_argument("--tmp-dir", help="where the backup is downloaded and decrypted")
    p.add_argument("--dry-run", action="store_true", help="show which backup, where from and which checks; touch nothing")


def parser():
    top = argparse.ArgumentParser(prog="lifeboat", description="PostgreSQL backups that cannot fail silently.")
    top.add_argument("--config", default=os.environ.get("LIFEBOAT_CONFIG", DEFAULT_CONFIG_PATH),
                     help="configuration file (default %(default)s)")
    top.add_argument("--json", action="store_true", help="print one JSON object per line")
    top.add_argument("--query", metavar="JMESPATH", help="print only what this JMESPath expression selects from the JSON "
                                                         "result (implies --json), e.g. 'shop.backups[?hold].id'")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    _backup_commands(command)
    _offsite_commands(command)
    _operator_commands(command)

    p = command("check-config", cmd_check_config, "validate the configuration file")
    p.add_argument("--connect", action="store_true",
                   help="also log in to the server, check pg_dump is not older than it, and reach each offsite bucket "
                        "(webhooks are not contacted)")
    return top


def _out(text):
    """stdout, flushed at once so cron logs keep lines in order (sanity forbids print in module_utils)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _warnings(result):
    """Every warning in a result, nested ones too (a backup's verification, each push of --all)."""
    if isinstance(result, dict):
        found = list(result.get("warnings") or []) if isinstance(result.get("warnings"), list) else []
        return found + [w for key, value in result.items() if key != "warnings" for w in _warnings(value)]
    if isinstance(result, list):
        return [w for value in result for w in _warnings(value)]
    return []


def _terminated(signum, frame):
    raise KeyboardInterrupt("terminated by signal %d" % signum)


def main(argv=None):
    args = parser().parse_args(argv)
    os.umask(0o077)
    # SIGTERM (systemd, cron's kill, timeout) unwinds like ^C: partial directories removed, failure notified.
    signal.signal(signal.SIGTERM, _terminated)
    _scratch.sweep()  # what a killed run left in the temporary directory (decrypted archives)
    args.json = args.json or bool(args.query)
    try:
        query = _query.compile_query(args.query) if args.query else None
        config = load_config_file(args.config)
        result, text = args.func(config, args)
    except LifeboatError as exc:
        message = " ".join(str(exc).split())
        if args.json:
            _out(json.dumps({"ok": False, "command": args.command, "kind": exc.kind, "error": message}))
        sys.stderr.write("lifeboat: %s\n" % message)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        sys.stderr.write("lifeboat: %s\n" % (exc or "interrupted"))
        return 130
    if query:
        _out(json.dumps(_query.search(query, dict(result, ok=True, command=args.command)), sort_keys=True))
    elif args.json:
        _out(json.dumps(dict(result, ok=True, command=args.command), sort_keys=True, default=str))
    else:
        _out(text)
        # --json carries them in the object; a human reading text must see them too.
        for warning in sorted(set(_warnings(result)), key=_warnings(result).index):
            if ("warning: %s" % warning) not in text:
                sys.stderr.write("lifeboat: warning: %s\n" % " ".join(str(warning).split()))
    return 0
