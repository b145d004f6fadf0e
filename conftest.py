"""The Odoo tier under pytest-odoo (scripts/odoo-pytest): what Odoo's own test runner does around each
test and pytest-odoo does not do for Odoo 18.

Odoo's test suite names the test being run in ``odoo.modules.module.current_test`` before the class's
setup; the gateway reads it to tell a test's transaction (a TransactionCase's cursor, whose usage rows
roll back with it) from a caller's (whose rows commit in a transaction of their own). The pure tier
(``pytest -p no:odoo tests``) loads no Odoo, and this does nothing there.
"""

import sys

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if "odoo.tests" not in sys.modules:
        return
    from odoo.modules import module
    from odoo.tests import BaseCase

    instance = getattr(item, "instance", None)
    if isinstance(instance, BaseCase):
        module.current_test = instance
