import genai_prices
from genai_prices import Usage as PriceUsage

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, new_test_user
from odoo.tools import SQL

from .fake_provider import FakeProviderServer

SYSTEM_PROMPT = "You are the assistant of an Odoo CRM. " * 60


def genai_price_of(model, provider_id, usage, at=None):
    """The cost genai-prices computes for a normalized usage dict at time `at` (None: now): the reference
    for the ledger."""
    price = genai_prices.calc_price(
        PriceUsage(
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            cache_read_tokens=usage["cache_read_tokens"] or None,
            cache_write_tokens=usage["cache_write_tokens"] or None,
            cache_write_1h_tokens=usage.get("cache_write_1h_tokens") or None,
        ),
        model_ref=model,
        provider_id=provider_id,
        genai_request_timestamp=at,
    )
    return float(price.total_price)


def delete_rows_of(env, provider):
    """Remove what committed calls to `provider` left: ledger, rollups (which keep purged rows' history on
    purpose), benchmarks, findings... every stored row pointing at the provider."""
    for model in env.registry.values():
        field = model._fields.get("provider_id")
        if model._auto and field and field.store and field.comodel_name == "ai.service.provider":
            env.cr.execute(SQL("DELETE FROM %s WHERE provider_id = %s", SQL.identifier(model._table), provider.id))
    env.invalidate_all()


class FakeProviderMixin:
    """A test class with its own fake provider server on 127.0.0.1 (`cls.fake`), reset before each test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = FakeProviderServer().start()
        cls.addClassCleanup(cls.fake.stop)

    def setUp(self):
        super().setUp()
        self.fake.reset()


class UsageRowsCase(TransactionCase):
    """Usage rows written straight to the ledger, for a provider that is never called (`cls.provider`),
    read by an AI Cost manager (`cls.manager`)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.provider = cls.env["ai.service.provider"].create({
            "name": f"{cls.__name__} (test)", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "gpt-4o-mini",
        })
        cls.manager = new_test_user(
            cls.env, login=f"ai_{cls.__name__.lower()}_manager",
            groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager",
        )


class AiCostCase(FakeProviderMixin, TransactionCase):
    """Providers pointed at a fake provider server on 127.0.0.1.

    The registry is put in test mode, as HttpCase does, so the gateway's own ledger
    transaction runs on the test cursor and rolls back with the test.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry.enter_test_mode(cls.cr)
        cls.addClassCleanup(cls.registry.leave_test_mode)
        Provider = cls.env["ai.service.provider"]
        cls.claude = Provider.create(cls._provider_vals(cls.fake, "anthropic"))
        cls.gpt = Provider.create(cls._provider_vals(cls.fake, "openai_compatible"))
        # Tests send the same prompt again and expect the provider to answer it: the response
        # cache, on by default, is switched on by its own tests (test_response_cache).
        cls.env.company.ai_response_cache = False

    @staticmethod
    def _provider_vals(fake, kind, **overrides):
        anthropic = kind == "anthropic"
        return {
            "name": "Claude Haiku (fake)" if anthropic else "GPT-4o mini (fake)",
            "kind": kind,
            "base_url": fake.anthropic_base_url if anthropic else fake.openai_base_url,
            "api_key": "sk-test-" + ("anthropic" if anthropic else "openai"),
            "model": "claude-3-5-haiku-latest" if anthropic else "gpt-4o-mini",
            "timeout": 5,
            "max_retries": 1,
            **overrides,
        }

    def assertCallFails(self, exception, **kwargs):
        """Call send_message expecting `exception`, without the savepoint rollback of
        assertRaises, which would also undo the ledger row written on the shared test cursor."""
        messages = kwargs.pop("messages", [{"role": "user", "content": "Qualify lead 42."}])
        try:
            self.env["ai.service"].send_message(messages, **kwargs)
        except exception as error:
            return error
        self.fail(f"send_message did not raise {exception.__name__}")

    def usage_rows(self):
        return self.env["ai.token.usage"].search([], order="id")



class CommittedProviderCase(TransactionCase):
    """Outside test mode, as in production, where every call really commits: a provider at a fake provider
    server and a budget on it, committed before each test, deleted after it with the rows their calls left."""

    def setUp(self):
        super().setUp()
        self.fake = FakeProviderServer().start()
        self.addCleanup(self.fake.stop)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(AiCostCase._provider_vals(self.fake, "openai_compatible"))
            budget = env["ai.cost.budget"].create({
                "name": f"{type(self).__name__} budget", "budget_amount": 1000,
                "provider_ids": [Command.set(provider.ids)], **self._budget_vals(),
            })
            self.provider_id, self.budget_id = provider.id, budget.id
        self.addCleanup(self._delete_committed)

    def _budget_vals(self):
        """More values of the budget."""
        return {}

    def _delete_committed(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            budget = env["ai.cost.budget"].browse(self.budget_id)
            operations = budget.operation_ids
            budget.unlink()
            operations.unlink()
            self.delete_provider(env, self.provider_id)

    @staticmethod
    def delete_provider(env, provider_id):
        """Delete a committed provider and every row its calls left."""
        provider = env["ai.service.provider"].browse(provider_id).exists()
        delete_rows_of(env, provider)
        provider.unlink()
