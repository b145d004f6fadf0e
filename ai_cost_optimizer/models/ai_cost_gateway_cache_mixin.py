from odoo import api, models


class AiCostGatewayCacheMixin(models.AbstractModel):
    """Records the gateway reads on every call through an ormcache: creating, deleting or changing
    one (in `_gateway_cache_fields`) clears the registry caches, in every worker through the registry
    signaling, and again after the commit (a call running meanwhile on an older snapshot may have
    cached the old values) or the rollback (a call of the same transaction may have cached values that
    were never committed)."""

    _name = "ai.cost.gateway.cache.mixin"
    _description = "AI Cost: records cached for the gateway"
    _gateway_cache_fields = ()

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        self._clear_gateway_cache()
        return records

    def write(self, vals):
        result = super().write(vals)
        if set(self._gateway_cache_fields).intersection(vals):
            self._clear_gateway_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self._clear_gateway_cache()
        return result

    def _clear_gateway_cache(self):
        self.env.registry.clear_cache()
        self.env.cr.postcommit.add(self.env.registry.clear_cache)
        self.env.cr.postrollback.add(self.env.registry.clear_cache)
