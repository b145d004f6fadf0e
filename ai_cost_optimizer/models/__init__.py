from . import ai_task_type
from . import ai_service_provider_price
from . import ai_service_provider
from . import ai_token_usage
from . import ai_service
from . import res_company
from . import res_config_settings
