/** @odoo-module **/

import { registry } from "@web/core/registry";

// The answer of the fake provider, set by tests/test_playground_stream.py, which streams it slowly.
const FIRST_WORDS = "Bonjour, voici la";
const ANSWER = "Bonjour, voici la traduction: good morning means bonjour.";

registry.category("web_tour.tours").add("ai_cost_playground_stream_tour", {
    steps: () => [
        {
            content: "Type a prompt",
            trigger: ".o_field_widget[name=prompt] textarea",
            run: "edit Translate 'good morning' to French.",
        },
        {
            content: "Estimate it",
            trigger: "button[name=action_estimate]",
            run: "click",
        },
        {
            content: "Stream the answer",
            trigger: ".o_ai_playground_stream_button:not(:disabled)",
            run: "click",
        },
        {
            content: "Confirm that it is billed",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The answer grows as its chunks arrive",
            trigger: `.o_ai_playground_stream_text:contains(${FIRST_WORDS})`,
        },
        {
            content: "Once recorded, the form shows the answer",
            trigger: `.o_field_widget[name=answer]:contains(${ANSWER})`,
        },
        {
            content: "with its cost and usage row",
            trigger: ".o_field_widget[name=usage_id] a",
            run: () => {
                const cost = document.querySelector(".o_field_widget[name=actual_cost_usd]").textContent;
                if (!/\$\s*0\.0*[1-9]/.test(cost)) {
                    throw new Error(`No cost shown for the streamed call: ${cost}`);
                }
                if (document.querySelector(".o_ai_playground_stream_error")) {
                    throw new Error("The stream reported an error");
                }
            },
        },
    ],
});
