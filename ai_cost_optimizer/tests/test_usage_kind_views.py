from lxml import etree

from odoo.tests import tagged
from odoo.tools.safe_eval import safe_eval

from .common import UsageRowsCase


@tagged("post_install", "-at_install")
class TestUsageKindViews(UsageRowsCase):
    """The usage screens tell chat calls from embedding calls: a Kind column and field, the Chat and
    Embeddings filters and a group-by Kind, each selecting what its name says."""

    def test_views_show_and_filter_the_kind(self):
        Usage = self.env["ai.token.usage"].with_user(self.manager)
        rows = Usage.sudo().create([
            {"provider_id": self.provider.id, "kind": kind, "input_tokens": 10, "cost_usd": 0.001}
            for kind in ("chat", "chat", "embedding")
        ])
        views = Usage.get_views([(False, "list"), (False, "form"), (False, "search")])["views"]
        for view_type in ("list", "form"):
            self.assertIn('<field name="kind"', views[view_type]["arch"], view_type)
        search = etree.fromstring(views["search"]["arch"])
        domain = {
            name: safe_eval(search.find(f".//filter[@name='{name}']").get(attribute))
            for name, attribute in (
                ("filter_chat", "domain"), ("filter_embedding", "domain"), ("group_kind", "context")
            )
        }
        mine = [("id", "in", rows.ids)]
        self.assertEqual(Usage.search(mine + domain["filter_chat"]), rows[:2])
        self.assertEqual(Usage.search(mine + domain["filter_embedding"]), rows[2])
        groups = Usage._read_group(mine, [domain["group_kind"]["group_by"]], ["__count"])
        self.assertEqual(dict(groups), {"chat": 2, "embedding": 1})
