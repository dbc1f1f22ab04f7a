// The "Data & CRM" administration screen: the CRM card's settings (address, on/off, time limit, reuse, manager,
// the signing secret) and the retention rules (kind, days, channel) with a dry run ("count") and "apply now".
// Registered with admin.js as "privacy". Everything from the server is put into the page as text (dom.js).

import "../texts/privacy.js";
import { api, ApiError, get } from "../api.js";
import { h } from "../dom.js";
import { fullTime, lang, t } from "../i18n.js";
import { button, tx } from "./kit.js";

const KINDS = ["conversations", "attachments", "raw_events", "audit"];
const state = { root: null, onError: () => {}, crm: null, rules: [], channels: [], result: null, notice: null,
  error: null, signature: "" };

export const privacyScreen = {
  async show(root, { onError }) {
    state.root = root;
    state.onError = onError;
    root.dataset.section = "privacy";
    root.dataset.mode = "list";
    root.replaceChildren(h("p", { class: "empty", text: t("app.loading") }));
    await load(true);
  },
  async refresh() {
    await load(false);
  },
  langChanged() {
    render(true);
  },
};

async function load(force) {
  try {
    [state.crm, state.rules, state.channels] = await Promise.all([get("/integrations/crm"), get("/retention-policies"),
      get("/channels")]);
  } catch (err) {
    state.onError(err);
    return;
  }
  render(force);
}

function render(force) {
  if (!state.root) return;
  const signature = JSON.stringify([lang(), state.crm, state.rules, state.result, state.notice, state.error]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  state.root.replaceChildren(h("div", { class: "admin__page" },
    h("header", { class: "admin__head" }, h("div", { class: "admin__titles" },
      tx("h2", "priv.title", null, { class: "admin__title" }), tx("p", "priv.lead", null, { class: "admin__lead" }))),
    state.notice ? tx("div", state.notice, null, { class: "notice", id: "priv-notice", attrs: { role: "status" } }) : null,
    state.error ? h("div", { class: "notice notice--error", id: "priv-error", attrs: { role: "alert" }, text: state.error }) : null,
    crmCard(), retentionCard()));
  state.root.dataset.section = "privacy";
}

async function act(fn, notice = "priv.saved") {
  state.error = null;
  state.notice = null;
  try {
    await fn();
    if (notice) state.notice = notice;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return state.onError(err);
    state.error = err.message;
  }
  await load(true);
}

function field(key, input) {
  return h("label", { class: "field" }, tx("span", key, null, { class: "field__label" }), input);
}

function check(key, input) {
  return h("label", { class: "check" }, input, tx("span", key));
}

function crmCard() {
  const c = state.crm;
  const url = h("input", { id: "crm-url", value: c.url, attrs: { type: "url", placeholder: "https://crm.example/kommutator" } });
  const enabled = h("input", { id: "crm-enabled", attrs: { type: "checkbox" }, checked: c.enabled });
  const timeout = h("input", { id: "crm-timeout", value: String(c.timeout_seconds), attrs: { type: "number", min: 1, max: 30 } });
  const ttl = h("input", { id: "crm-ttl", value: String(c.ttl_seconds), attrs: { type: "number", min: 0 } });
  const manager = h("input", { id: "crm-manager", attrs: { type: "checkbox" }, checked: c.set_manager });
  const save = () => act(() => api("PUT", "/integrations/crm", { url: url.value.trim() || null, enabled: enabled.checked,
    timeout_seconds: Number(timeout.value), ttl_seconds: Number(ttl.value), set_manager: manager.checked }));
  return h("section", { class: "card", id: "crm-card" }, tx("h3", "priv.crm"), tx("p", "priv.crm.lead", null, { class: "muted" }),
    field("priv.crm.url", url), check("priv.crm.enabled", enabled),
    h("div", { class: "qform__row" }, field("priv.crm.timeout", timeout), field("priv.crm.ttl", ttl)),
    check("priv.crm.manager", manager),
    h("p", {}, tx("span", "priv.crm.secret"), " ", h("code", { id: "crm-secret", text: c.secret })),
    button("priv.save", save, "btn btn--primary", { id: "crm-save" }));
}

function kindName(kind) {
  return t(`priv.kind.${kind}`);
}

function channelName(id) {
  if (id === null || id === undefined) return t("priv.allChannels");
  const c = state.channels.find((x) => x.id === id);
  return c ? c.name : `#${id}`;
}

function retentionCard() {
  const kind = h("select", { id: "ret-kind" }, KINDS.map((k) => h("option", { attrs: { value: k }, text: kindName(k) })));
  const days = h("input", { id: "ret-days", value: "365", attrs: { type: "number", min: 1 } });
  const channel = h("select", { id: "ret-channel" }, h("option", { attrs: { value: "" }, text: t("priv.allChannels") }),
    state.channels.map((c) => h("option", { attrs: { value: String(c.id) }, text: c.name })));
  const add = () => act(() => api("POST", "/retention-policies", { kind: kind.value, days: Number(days.value),
    channel_id: channel.value && kind.value !== "audit" ? Number(channel.value) : null }));
  const rows = state.rules.map((r) => {
    const dayInput = h("input", { class: "ret-row__days", value: String(r.days), attrs: { type: "number", min: 1, "aria-label": t("priv.days") } });
    return h("tr", { class: "ret-row", dataset: { id: String(r.id), kind: r.kind } },
      h("td", { text: kindName(r.kind) }), h("td", { text: channelName(r.channel_id) }),
      h("td", {}, dayInput, " ", button("priv.save", () => act(() => api("PATCH", `/retention-policies/${r.id}`,
        { days: Number(dayInput.value) })), "btn btn--small ret-save")),
      h("td", { class: "muted", text: r.last_run_at ? t("priv.lastRun", { when: fullTime(r.last_run_at), n: r.last_removed })
        : t("priv.never") }),
      h("td", { class: "cell-actions" }, button("priv.delete", () => act(() => api("DELETE", `/retention-policies/${r.id}`)),
        "btn btn--small btn--danger ret-delete")));
  });
  const run = (dry) => act(async () => {
    if (!dry && !window.confirm(t("priv.confirmApply"))) return;
    const outcome = await api("POST", `/retention/run?dry_run=${dry}`, {});
    state.result = { dry, items: outcome };
  }, null);
  const result = state.result ? h("div", { class: "notice", id: "ret-result", attrs: { role: "status" } },
    tx("span", state.result.dry ? "priv.counted" : "priv.applied"), " ",
    h("span", { text: state.result.items.map((o) => t("priv.result", { kind: kindName(o.kind), n: o.count })).join("; ") })) : null;
  return h("section", { class: "card", id: "retention-card" }, tx("h3", "priv.retention"),
    tx("p", "priv.retention.lead", null, { class: "muted" }),
    state.rules.length ? h("table", { class: "table", id: "ret-table" },
      h("thead", {}, h("tr", {}, ...["priv.kind", "priv.channel", "priv.days", "", "admin.col.actions"]
        .map((k) => (k ? tx("th", k, null, { attrs: { scope: "col" } }) : h("th", { attrs: { scope: "col" } }))))),
      h("tbody", {}, ...rows)) : tx("p", "priv.none", null, { class: "empty" }),
    h("div", { class: "qform__row" }, field("priv.kind", kind), field("priv.days", days), field("priv.channel", channel),
      button("priv.add", add, "btn", { id: "ret-add" })),
    h("div", { class: "admin__actions" }, button("priv.count", () => run(true), "btn", { id: "ret-count" }),
      button("priv.apply", () => run(false), "btn btn--danger", { id: "ret-apply" })),
    result);
}
