{
    "name": "AI Cost Optimizer: Analytic Accounting",
    "version": "18.0.1.0.0",
    "category": "Productivity/AI",
    "summary": "Allocate AI spend on analytic accounts and export it as FinOps FOCUS 1.2",
    "description": """
The bridge between the AI cost ledger and Odoo's analytic accounting (DESIGN section 12): allocation
rules, daily posting of the spend as analytic items, the unallocated spend, and a FOCUS 1.2 export.
""",
    "author": "ai_cost_optimizer",
    "license": "LGPL-3",
    "depends": ["ai_cost_optimizer", "analytic"],
    "data": [
        "security/ir.model.access.csv",
        "security/ai_cost_analytic_security.xml",
        "data/ir_cron_data.xml",
        "views/ai_cost_allocation_rule_views.xml",
        "views/ai_cost_unallocated_views.xml",
        "views/ai_cost_analytic_post_views.xml",
        "views/ai_cost_focus_export_views.xml",
        "views/account_analytic_line_views.xml",
        "views/ai_cost_analytic_menus.xml",
    ],
    "demo": [
        "demo/ai_cost_analytic_demo.xml",
    ],
    "auto_install": True,
    "installable": True,
}
