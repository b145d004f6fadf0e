/** @odoo-module **/

import { localization } from "@web/core/l10n/localization";
import { formatFloat } from "@web/core/utils/numbers";

/** The most decimals an amount shows: a millionth of a dollar, below any single call's cost. */
export const MAX_USD_DECIMALS = 6;
const SMALLEST_SHOWN = 0.5 * 10 ** -MAX_USD_DECIMALS;

/** `text` (formatted with the user's decimal point) without trailing zeros, keeping at least two decimals. */
function trimZeros(text) {
    const [units, decimals = ""] = text.split(localization.decimalPoint);
    return units + localization.decimalPoint + decimals.replace(/0+$/, "").padEnd(2, "0");
}

/**
 * US dollars as an amount of its size reads best, with the user's separators:
 * - from one dollar up, cents: "$1,234.56";
 * - below a dollar, three significant digits, at most 6 decimals, no trailing zeros ("$0.000216", "$0.07"),
 *   so that a single call's cost is not rounded away as a currency's cents would be;
 * - zero: "$0.00"; a non-zero amount below half a millionth: "< $0.000001".
 * With `exact` (prices, typed amounts), every decimal up to 6, without trailing zeros ("$1.125").
 *
 * @param {number} value amount in USD
 * @param {{ exact?: boolean }} [options]
 * @returns {string}
 */
export function formatUsd(value, { exact = false } = {}) {
    const amount = value || 0;
    const size = Math.abs(amount);
    const sign = amount < 0 ? "-" : "";
    if (size > 0 && size < SMALLEST_SHOWN) {
        return `${sign}< $0.000001`;
    }
    let decimals = 2;
    if (exact) {
        decimals = MAX_USD_DECIMALS;
    } else if (size > 0 && size < 1) {
        decimals = Math.min(MAX_USD_DECIMALS, Math.max(2, Math.ceil(-Math.log10(size)) + 2));
    }
    const text = formatFloat(size, { digits: [false, decimals] });
    return `${sign}$${decimals > 2 ? trimZeros(text) : text}`;
}

/** The amount in an input (after a "$" of its own): up to 6 decimals, without trailing zeros. */
export function formatUsdInput(value) {
    return trimZeros(formatFloat(value || 0, { digits: [false, MAX_USD_DECIMALS] }));
}
