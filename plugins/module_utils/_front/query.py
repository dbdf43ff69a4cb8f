# -*- coding: utf-8 -*-
# Copyright (c) lifeboat.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JMESPath queries on results (``lifeboat --query``, catalog_info's ``query``), as the AWS CLI has them.

jmespath is optional on hosts (Debian: python3-jmespath; boto3 depends on it), so it is imported lazily, and an
expression is compiled before the command runs: a typo never costs a backup its output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from .._errors import ConfigError


def compile_query(expression, option="--query"):
    """The compiled expression; ConfigError naming the option when jmespath is missing or the expression is wrong."""
    try:
        import jmespath
        import jmespath.exceptions
    except ImportError:
        raise ConfigError("%s needs the Python package jmespath on this host (Debian: apt install python3-jmespath; "
                          "pip: jmespath)" % option)
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ConfigError("%s %r is not a valid JMESPath expression: %s" % (option, expression, " ".join(str(exc).split())))


def search(compiled, document):
    """Apply a compiled expression to ``document`` as its JSON form (what --json prints), so dates are strings."""
    return compiled.search(json.loads(json.dumps(document, default=str)))
