# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where backups, logs and metrics live on the managed host.
    DOCUMENTATION = r"""
options:
  backup_root:
    description:
      - Directory holding C(<profile>/<backup_id>/) backups. Created with mode 0700 when missing.
    type: path
    default: /var/backups/lifeboat
  log_dir:
    description:
      - Directory of the audit log C(audit.jsonl). Default is C(<backup_root>/.log).
    type: path
  metrics_dir:
    description:
      - Directory for Prometheus textfile metrics C(lifeboat_<profile>.prom), for node_exporter's textfile collector.
      - Default is C(<backup_root>/.metrics).
    type: path
"""
