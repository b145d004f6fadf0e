from . import cost_api
from . import playground
