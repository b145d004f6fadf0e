from . import cost_api
