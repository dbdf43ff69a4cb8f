# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine version, recorded in every manifest (keep in step with galaxy.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ENGINE_VERSION = "0.1.0"
