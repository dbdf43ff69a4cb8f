# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The webhook a failed task posts to: the notify section of lifeboat.yml, for one task.
    DOCUMENTATION = r"""
options:
  webhook_url:
    description:
      - Slack/Discord-compatible or JSON webhook (an C(http://) or C(https://) URL) posted to when the task fails.
        Check mode posts nothing.
      - A secret, as such URLs carry a token; it is never logged or returned and is cut out of every message. Keep
        it in a vault.
      - The post says what failed on which host and why, with every configured secret removed from the error.
    type: str
  webhook_format:
    description:
      - Body of the webhook. V(slack) and V(discord) post one line of text, V(json) lifeboat's document (status,
        step, error, timings).
    type: str
    choices: [slack, discord, json]
    default: json
"""
