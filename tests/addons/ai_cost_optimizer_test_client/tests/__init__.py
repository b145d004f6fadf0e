from . import test_gateway_in_a_module_test
from . import test_gateway_kinds_in_a_module_test
