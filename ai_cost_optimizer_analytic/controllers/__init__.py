from . import focus_api
