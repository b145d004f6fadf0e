from . import test_analytic_posting, test_demo_data, test_focus_export, test_install
