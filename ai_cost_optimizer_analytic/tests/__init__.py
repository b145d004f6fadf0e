from . import test_analytic_posting, test_install
