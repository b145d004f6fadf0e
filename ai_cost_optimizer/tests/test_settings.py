from odoo.tests import Form, tagged

from .common import AiCostCase

TRIVIAL = [{"role": "user", "content": "Say hi."}]


@tagged("post_install", "-at_install")
class TestCompanySettings(AiCostCase):
    def _settings(self, **values):
        with Form(self.env["res.config.settings"]) as form:
            for name, value in values.items():
                setattr(form, name, value)
        self.env.flush_all()

    def test_default_mode_applies_to_calls_that_name_none(self):
        self._settings(ai_default_mode="smart_router")
        self.assertEqual(self.env.company.ai_default_mode, "smart_router")
        result = self.env["ai.service"].send_message(TRIVIAL, provider=self.gpt)
        self.assertEqual(self.env["ai.token.usage"].browse(result["usage_id"]).mode, "smart_router")
        result = self.env["ai.service"].send_message(TRIVIAL, provider=self.gpt, mode="passthrough")
        self.assertEqual(self.env["ai.token.usage"].browse(result["usage_id"]).mode, "passthrough")

    def test_company_switch_turns_waste_detection_off_for_every_provider(self):
        duplicate = [{"role": "user", "content": "Qualify lead 42, please."}]
        send = self.env["ai.service"].send_message
        send(duplicate, provider=self.gpt, use_cache=False)
        second = send(duplicate, provider=self.gpt, use_cache=False)
        self.assertTrue(self.env["ai.token.usage"].browse(second["usage_id"]).waste_detected)

        self._settings(ai_enable_waste_detection=False)
        self.assertTrue(self.gpt.enable_waste_detection)
        third = send(duplicate, provider=self.gpt, use_cache=False)
        self.assertIsNone(third["waste_report"])
        self.assertFalse(self.env["ai.token.usage"].browse(third["usage_id"]).waste_detected)
