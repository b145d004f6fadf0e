/** @odoo-module **/

import { Component, useState } from "@odoo/owl";
import { ConfirmationDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

/**
 * Call `onEvent(name, data)` for each server-sent event of `body` (a fetch response's stream), as it
 * arrives: the events of controllers/playground.py, their data one line of JSON.
 */
export async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
        const { value, done } = await reader.read();
        if (done) {
            return;
        }
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const name = /^event: (.*)$/m.exec(block);
            const data = /^data: (.*)$/m.exec(block);
            if (name && data) {
                onEvent(name[1], JSON.parse(data[1]));
            }
        }
    }
}

/** The message of a refused request: the route's JSON error, else its status. */
async function refusalMessage(response) {
    try {
        return (await response.json()).error.message;
    } catch {
        return _t("The answer could not be streamed (HTTP %s).", response.status);
    }
}

/**
 * The playground's Stream button: sends the prompt as Send does, shows the answer as it grows, then
 * reloads the record, whose Answer group then shows the recorded call (usage row, cost).
 */
export class PlaygroundStream extends Component {
    static template = "ai_cost_optimizer.PlaygroundStream";
    static props = { ...standardWidgetProps };

    setup() {
        this.dialog = useService("dialog");
        this.state = useState({ streaming: false, text: "", error: "" });
    }

    onStreamClick() {
        this.dialog.add(ConfirmationDialog, {
            body: _t("Stream this prompt from the provider? It will be billed."),
            // Not awaited: the dialog closes while the answer streams.
            confirm: () => {
                this.stream();
            },
            cancel: () => {},
        });
    }

    async stream() {
        const record = this.props.record;
        if (!(await record.save())) {
            return;
        }
        Object.assign(this.state, { streaming: true, text: "", error: "" });
        try {
            const body = new FormData();
            body.append("csrf_token", odoo.csrf_token);
            const response = await fetch(`/ai_cost/playground/${record.resId}/stream`, { method: "POST", body });
            if (!response.ok) {
                this.state.error = await refusalMessage(response);
                return;
            }
            await readEvents(response.body, (name, data) => {
                if (name === "chunk") {
                    this.state.text += data.text;
                } else if (name === "error") {
                    this.state.error = data.message;
                }
            });
        } catch (error) {
            this.state.error = _t("The answer could not be streamed: %s", error.message);
        } finally {
            await record.load();
            // The Answer group shows the recorded answer now; an error stays in view.
            Object.assign(this.state, { streaming: false, text: "" });
        }
    }
}

registry.category("view_widgets").add("ai_playground_stream", { component: PlaygroundStream });
