"""Pure-Python core of ai_cost_optimizer: no Odoo imports, safe to use in plain pytest."""
