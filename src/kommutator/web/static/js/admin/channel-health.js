// A channel's health on the channel screens: a status badge in the list, and in the channel's side card the
// status, the last error with its time, the last receive and send, and the "Test connection" button.

import "../texts/channel-health.js";
import { post } from "../api.js";
import { h } from "../dom.js";
import { fullTime, shortTime, t } from "../i18n.js";
import { button, state, tx } from "./common.js";

const BADGE = { ok: "badge--resolved", degraded: "badge--degraded", failing: "badge--failing", unknown: "badge--other" };

/** The status badge; its title carries the last error (the list shows no more). */
export function healthBadge(health) {
  const status = (health && health.status) || "unknown";
  const title = health && health.last_error && status !== "ok" ? health.last_error : t(`health.hint.${status}`);
  return tx("span", `health.status.${status}`, null,
    { class: ["badge", BADGE[status] || "badge--other", "channel-health__status"], dataset: { status },
      attrs: { title } });
}

function when(iso) {
  return iso ? h("time", { attrs: { datetime: iso, title: fullTime(iso) }, text: shortTime(iso) })
    : tx("span", "health.never", null, { class: "muted" });
}

function details(health) {
  const status = (health && health.status) || "unknown";
  const parts = [healthBadge(health), tx("p", `health.hint.${status}`, null, { class: "muted channel-health__hint" })];
  if (health && health.last_error) {
    parts.push(h("div", { class: ["channel-health__error", status === "ok" ? "" : "channel-health__error--now"] },
      tx("p", "health.lastError", { time: shortTime(health.last_error_at) }, { class: "channel-health__label" }),
      health.error_code ? tx("p", `health.code.${health.error_code}`, null, { class: "channel-health__headline" }) : null,
      h("p", { class: "channel-health__detail", text: health.last_error })));
  }
  parts.push(h("dl", { class: "channel-health__times" },
    tx("dt", "health.lastReceive"), h("dd", { class: "channel-health__receive" }, when(health && health.last_receive_at)),
    tx("dt", "health.lastSend"), h("dd", { class: "channel-health__send" }, when(health && health.last_send_at))));
  return parts;
}

function checksList(result) {
  return h("div", { class: "channel-test__result", id: "channel-test-result", attrs: { role: "status" } },
    tx("p", result.ok ? "health.testOk" : "health.testFailed", null, { class: "channel-test__summary" }),
    h("ul", { class: "channel-test__checks" }, ...result.checks.map((c) => h("li", {
      class: ["channel-test__check", c.ok ? "channel-test__check--ok" : "channel-test__check--failed"],
      dataset: { ok: String(c.ok) } },
    h("span", { class: "channel-test__mark", attrs: { "aria-hidden": "true" }, text: c.ok ? "✓" : "✗" }),
    h("strong", { text: c.name }), " ", tx("span", c.ok ? "health.checkOk" : "health.checkFailed"), ": ",
    h("span", { class: "channel-test__detail", text: c.detail })))));
}

/** The health section of a channel's side card, with its "Test connection" button. */
export function healthSection(channel) {
  const body = h("div", { class: "channel-health__body" }, ...details(channel.health));
  const result = h("div", { class: "channel-test__slot" });
  const test = button("health.test", async (event) => {
    const btn = event.currentTarget;
    btn.disabled = true;
    btn.textContent = t("health.testing");
    try {
      const answer = await post(`/channels/${channel.id}/test`, {});
      channel.health = answer.health;
      body.replaceChildren(...details(answer.health));
      result.replaceChildren(checksList(answer));
    } catch (err) {
      state.onError(err);
    } finally {
      btn.disabled = false;
      btn.textContent = t("health.test");
    }
  }, "btn btn--small", { props: { id: "channel-test" } });
  return h("section", { class: "channel-health", id: "channel-health" },
    tx("h3", "health.title", null, { class: "side-card__title" }), body, test, result);
}
