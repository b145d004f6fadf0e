from . import test_analytic_posting, test_focus_export, test_install
