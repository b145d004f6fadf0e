from . import test_gateway_in_a_module_test
