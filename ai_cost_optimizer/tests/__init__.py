from . import test_gateway
from . import test_ledger_rollback
from . import test_provider_prices
from . import test_security
from . import test_secrets
