# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of a recovery drill: JSON (the record), Markdown and a self-contained HTML page.

Written to ``<report_dir>/<profile>/<time>-<drill host>.{json,md,html}``. The earlier JSON reports of the profile in
that directory are the history: the trend table and the HTML page's inline SVG chart of RTO and RPO against the
objectives come from them (no external script, style sheet or font). Reports hold names, times and counts, never
table contents or secrets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import html
import json
import os
import time

from .._store.files import atomic_write, ensure_dir
from .._store.manifest import epoch_of

FORMAT = "lifeboat-drill-report"
FORMAT_VERSION = 1
TREND = 12  # drills shown in the trend


def directory(report_dir, profile):
    return os.path.join(report_dir, profile)


def history(report_dir, profile):
    """Earlier drill reports of the profile, oldest first; unreadable files are skipped."""
    found = []
    for path in glob.glob(os.path.join(directory(report_dir, profile), "*.json")):
        try:
            with open(path, "r", encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("format") == FORMAT:
            found.append(document)
    return sorted(found, key=lambda d: d.get("started_at") or "")


def write(report_dir, document):
    """Write the three files; returns their paths."""
    folder = ensure_dir(directory(ensure_dir(report_dir), document["profile"]))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch_of(document["started_at"])))
    stem = base = os.path.join(folder, "%s-%s" % (stamp, document["drill_host"]))
    n = 1
    while os.path.exists(stem + ".json"):  # a second drill in the same second keeps the first one's report
        stem, n = "%s-%d" % (base, n), n + 1
    paths = {"json": stem + ".json", "markdown": stem + ".md", "html": stem + ".html"}
    record = dict(document, format=FORMAT, format_version=FORMAT_VERSION, checklist=checklist(document))
    record.pop("report", None)
    trend = [d for d in history(report_dir, document["profile"]) if d.get("started_at") != record["started_at"]] + [record]
    trend = trend[-TREND:]
    atomic_write(paths["json"], (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    atomic_write(paths["markdown"], markdown(record, trend).encode("utf-8"))
    atomic_write(paths["html"], page(record, trend).encode("utf-8"))
    return paths


def _check(document, name):
    return next((c for c in document.get("checks") or [] if c["name"] == name), None)


def checklist(document):
    """The operators' monthly checklist, filled in from what the drill did: [{item, done, evidence}]."""
    stages = document["stages"]
    backup = document.get("backup") or {}
    counts, sample, amcheck = (_check(document, n) for n in ("row counts and freshness", "content sample", "amcheck"))
    own = [c for c in document.get("checks") or [] if c["name"] not in ("row counts and freshness", "content sample", "amcheck")]

    def state(check):
        return bool(check and check["ok"])

    return [
        {"item": "Download a backup", "done": stages["fetch"]["outcome"] == "ok",
         "evidence": "%s from %s (%s), sizes and SHA-256 checked" % (backup.get("id"), backup.get("location"), document["source"])},
        {"item": "Restore to a test environment", "done": stages["restore"]["outcome"] == "ok",
         "evidence": "scratch database %s, %s jobs" % (document["scratch_database"], document["jobs"])},
        {"item": "Verify data integrity by random sampling", "done": state(sample) and state(amcheck),
         "evidence": "; ".join(c["detail"] for c in (sample, amcheck) if c) or "not run"},
        {"item": "Critical tables have the expected row counts", "done": state(counts),
         "evidence": counts["detail"] if counts else "not run"},
        {"item": "Recent transactions present", "done": state(counts) and all(c["ok"] for c in own),
         "evidence": "freshness lag %s; %s" % (_duration(document.get("freshness_lag_seconds")),
                                               ", ".join("%s: %s" % (c["name"], "ok" if c["ok"] else "FAILED") for c in own) or "no profile checks")},
        {"item": "Document results", "done": True, "evidence": "this report"},
    ]


def _duration(seconds):
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 120:
        return "%.1f s" % seconds
    if seconds < 7200:
        return "%.1f min" % (seconds / 60)
    if seconds < 172800:
        return "%.1f h" % (seconds / 3600)
    return "%.1f d" % (seconds / 86400)


def _verdict(document):
    if document["ok"] and all(o["met"] for o in document["objectives"].values()):
        return "PASSED"
    return "FAILED" if not document["ok"] else "OBJECTIVE MISSED"


def _objective_rows(document):
    rows = []
    for name, measured in (("rto", document.get("rto_seconds")), ("rpo", document.get("rpo_seconds"))):
        objective = document["objectives"].get(name)
        rows.append([name.upper(), _duration(measured), objective["target"] if objective else "none set",
                     ("met" if objective["met"] else "MISSED") if objective else "-"])
    rows.append(["freshness lag", _duration(document.get("freshness_lag_seconds")), "-", "-"])
    return rows


def _sections(document, trend):
    """The report as (title, header, rows) tables, shared by Markdown and HTML."""
    backup = document.get("backup") or {}
    stages = document["stages"]
    return [
        ("Backup used", ["key", "value"], [[k, str(backup.get(k))] for k in (
            "id", "host", "database", "location", "consistent_at", "bytes", "tables", "rows", "server_version",
            "pg_dump_version", "engine_version")]),
        ("RTO and RPO", ["measure", "measured", "objective", "result"], _objective_rows(document)),
        ("Stages", ["stage", "seconds", "outcome"], [[n, str(stages[n]["seconds"]), stages[n]["outcome"]] for n in stages]),
        ("Checks", ["check", "result", "detail"],
         [[c["name"], {True: "ok", False: "FAILED", None: "skipped"}[c["ok"]], c["detail"]] for c in document.get("checks") or []]),
        ("Verification checklist", ["item", "done", "evidence"], [[i["item"], "yes" if i["done"] else "NO", i["evidence"]]
                                                                  for i in document["checklist"]]),
        ("Trend", ["drill", "backup", "result", "RTO", "RPO"],
         [[d["started_at"], (d.get("backup") or {}).get("id") or "-", _verdict(d), _duration(d.get("rto_seconds")),
           _duration(d.get("rpo_seconds"))] for d in reversed(trend)]),
    ]


def _summary(document):
    lines = ["Drill of profile %s on %s, started %s: **%s**." % (
        document["profile"], document["drill_host"], document["started_at"], _verdict(document))]
    if document.get("error"):
        lines.append("Error: %s" % document["error"])
    if document.get("source_note"):
        lines.append("Source: %s." % document["source_note"])
    if document.get("kept"):
        lines.append("Kept for inspection: %s." % ", ".join(document["kept"]))
    return lines


def markdown(document, trend):
    def cell(text):
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = ["# Recovery drill: %s" % document["profile"], ""] + [line + "  " for line in _summary(document)] + [""]
    for title, header, rows in _sections(document, trend):
        out += ["## %s" % title, "", "| %s |" % " | ".join(header), "|%s" % ("---|" * len(header))]
        out += ["| %s |" % " | ".join(cell(c) for c in row) for row in rows] + [""]
    return "\n".join(out)


_STYLE = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}"
          "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}th{background:#eee}"
          ".FAILED,.MISSED,.NO{color:#b00;font-weight:bold}.ok,.met,.yes,.PASSED{color:#070}")


def page(document, trend):
    esc = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>Recovery drill %s %s</title>" % (esc(document["profile"]), esc(document["started_at"])),
             "<style>%s</style></head><body>" % _STYLE, "<h1>Recovery drill: %s</h1>" % esc(document["profile"])]
    for line in _summary(document):
        parts.append("<p>%s</p>" % esc(line).replace("**", ""))
    parts.append("<h2>RTO and RPO of past drills</h2>")
    parts.append(chart(trend, "rto", "RTO"))
    parts.append(chart(trend, "rpo", "RPO"))
    for title, header, rows in _sections(document, trend):
        parts.append("<h2>%s</h2><table><tr>%s</tr>" % (esc(title), "".join("<th>%s</th>" % esc(h) for h in header)))
        for row in rows:
            parts.append("<tr>%s</tr>" % "".join('<td class="%s">%s</td>' % (esc(str(c).split(" ", 1)[0]), esc(str(c))) for c in row))
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def chart(trend, name, label, width=640, height=200):
    """An inline SVG line chart of ``<name>_seconds`` over the drills, with the current objective as a dashed line."""
    points = [(i, d.get("%s_seconds" % name)) for i, d in enumerate(trend)]
    values = [v for _i, v in points if v is not None]
    objective = (trend[-1]["objectives"].get(name) or {}).get("target_seconds") if trend else None
    top = max(values + ([objective] if objective else []) + [1.0]) * 1.15
    left, bottom = 60, height - 30

    def x(i):
        return left + (width - left - 20) * (i / max(1, len(trend) - 1))

    def y(v):
        return bottom - (bottom - 20) * (v / top)

    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s of past drills">' % (width, height, label),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>' % (left, bottom, width - 10, bottom),
           '<line x1="%d" y1="20" x2="%d" y2="%d" stroke="#888"/>' % (left, left, bottom),
           '<text x="5" y="15" font-size="12">%s (max %s)</text>' % (label, html.escape(_duration(top / 1.15)))]
    if objective:
        svg.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#b00" stroke-dasharray="6 4"/>' % (left, y(objective), width - 10, y(objective)))
        svg.append('<text x="%d" y="%.1f" font-size="11" fill="#b00">objective %s</text>' % (width - 150, y(objective) - 4, html.escape(_duration(objective))))
    line = [(x(i), y(v)) for i, v in points if v is not None]
    if len(line) > 1:
        svg.append('<polyline fill="none" stroke="#06c" stroke-width="2" points="%s"/>' % " ".join("%.1f,%.1f" % p for p in line))
    for i, v in points:
        if v is not None:
            svg.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="#06c"><title>%s: %s</title></circle>' % (
                x(i), y(v), html.escape(trend[i]["started_at"]), html.escape(_duration(v))))
    for i, d in enumerate(trend):
        svg.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>' % (x(i), height - 12, html.escape(d["started_at"][:10])))
    svg.append("</svg>")
    return "\n".join(svg)
