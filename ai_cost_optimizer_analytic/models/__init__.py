from . import (
    account_analytic_line,
    ai_cost_allocation_rule,
    ai_cost_analytic_post,
    ai_cost_focus_export,
    ai_cost_unallocated,
    res_company,
)
