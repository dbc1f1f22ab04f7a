// The "Event subscriptions" administration screen: the URLs that receive signed webhooks (name, address, the
// events they want), on/off, a test event, a new signing secret (shown once), and each subscription's delivery
// log with every attempt's answer and "send again". Registered with admin.js as "subscriptions".
// Everything from the server is put into the page as text (dom.js).

import "../texts/subscriptions.js";
import { api, ApiError, get } from "../api.js";
import { h } from "../dom.js";
import { fullTime, lang, t } from "../i18n.js";
import { button, tx } from "./kit.js";

const state = { root: null, onError: () => {}, mode: "list", subs: [], types: [], editing: null, log: null,
  logFor: null, error: null, notice: null, secret: null, signature: "" };

export const subscriptionsScreen = {
  async show(root, { onError }) {
    state.root = root;
    state.onError = onError;
    state.mode = "list";
    state.secret = null;
    root.dataset.section = "subscriptions";
    root.dataset.mode = "list";
    root.replaceChildren(h("p", { class: "empty", text: t("app.loading") }));
    await load(true);
  },
  async refresh() {
    if (state.mode === "list") await load(false);
    else if (state.mode === "log") await openLog(state.logFor, false);
  },
  langChanged() {
    render(true);
  },
};

async function load(force) {
  try {
    state.subs = await get("/subscriptions");
    if (!state.types.length) state.types = await get("/subscriptions/event-types");
  } catch (err) {
    state.onError(err);
    return;
  }
  render(force);
}

function render(force) {
  if (!state.root) return;
  const signature = JSON.stringify([lang(), state.mode, state.subs, state.log, state.notice, state.error,
    state.secret, state.editing && state.editing.id]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  const view = state.mode === "edit" ? editor() : state.mode === "log" ? logView() : list();
  state.root.replaceChildren(view);
  state.root.dataset.section = "subscriptions";
  state.root.dataset.mode = state.mode;
}

function notices() {
  return [
    state.notice ? tx("div", state.notice.key, state.notice.params, { class: "notice", id: "sub-notice", attrs: { role: "status" } }) : null,
    state.error ? h("div", { class: "notice notice--error", id: "sub-error", attrs: { role: "alert" }, text: state.error }) : null,
    state.secret ? h("div", { class: "notice", id: "sub-secret", attrs: { role: "status" } },
      tx("span", "subs.secretOnce"), " ", h("code", { text: state.secret })) : null,
  ];
}

function stateBadge(s) {
  if (s.enabled) return tx("span", "subs.on", null, { class: "badge badge--resolved" });
  return tx("span", s.disabled_reason === "failing" ? "subs.failing" : "subs.off", null,
    { class: ["badge", s.disabled_reason === "failing" ? "badge--queued" : "badge--other"] });
}

function list() {
  const head = h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" }, tx("h2", "subs.title", null, { class: "admin__title" }),
      tx("p", "subs.lead", null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, button("subs.new", () => edit(null), "btn btn--primary", { id: "sub-new" })));
  if (!state.subs.length) return h("div", { class: "admin__page" }, head, ...notices(), tx("p", "subs.empty", null, { class: "empty" }));
  const rows = state.subs.map((s) => h("tr", { class: "sub-row", dataset: { id: String(s.id) } },
    h("td", {}, h("span", { class: "cell-title", text: s.name }), h("span", { class: "cell-sub", text: s.url })),
    h("td", { class: "sub-row__events", text: s.event_types.join(", ") }),
    h("td", {}, stateBadge(s),
      s.pending ? tx("span", "subs.pending", { n: s.pending }, { class: "cell-sub" }) : null,
      s.failed ? tx("span", "subs.failed", { n: s.failed }, { class: "cell-sub" }) : null),
    h("td", { class: "cell-actions" },
      button("subs.log", () => openLog(s, true), "btn btn--small sub-log"),
      button("subs.test", () => test(s), "btn btn--small sub-test"),
      button(s.enabled ? "subs.disable" : "subs.enable", () => toggle(s), "btn btn--small sub-toggle"),
      button("subs.rotate", () => rotate(s), "btn btn--small sub-rotate"),
      button("admin.edit", () => edit(s), "btn btn--small sub-edit"))));
  const table = h("div", { class: "card table-wrap" }, h("table", { class: "table", id: "sub-table" },
    h("thead", {}, h("tr", {}, ...["subs.name", "subs.col.events", "subs.col.state", "admin.col.actions"]
      .map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
    h("tbody", {}, ...rows)));
  return h("div", { class: "admin__page" }, head, ...notices(), table);
}

async function act(fn) {
  state.error = null;
  try {
    await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return state.onError(err);
    state.error = err.message;
  }
  await load(true);
}

function test(s) {
  return act(async () => {
    const r = await api("POST", `/subscriptions/${s.id}/test`, {});
    state.notice = r.ok ? { key: "subs.testOk", params: { code: r.status_code, ms: r.duration_ms } }
      : { key: "subs.testFail", params: { error: r.error } };
  });
}

function toggle(s) {
  return act(async () => {
    await api("PATCH", `/subscriptions/${s.id}`, { enabled: !s.enabled });
    state.notice = { key: "subs.saved" };
  });
}

function rotate(s) {
  return act(async () => {
    state.secret = (await api("POST", `/subscriptions/${s.id}/rotate-secret`, {})).secret;
    state.notice = null;
  });
}

function edit(s) {
  state.editing = s;
  state.mode = "edit";
  state.error = null;
  state.secret = null;
  render(true);
}

function editor() {
  const s = state.editing || { name: "", url: "https://", event_types: [] };
  const field = (key, input) => h("label", { class: "field" }, tx("span", key, null, { class: "field__label" }), input);
  const name = h("input", { id: "sub-name", value: s.name, attrs: { autocomplete: "off" } });
  const url = h("input", { id: "sub-url", value: s.url, attrs: { type: "url", autocomplete: "off" } });
  const boxes = state.types.map((ty) => h("label", { class: "check" },
    h("input", { attrs: { type: "checkbox", value: ty.type }, checked: s.event_types.includes(ty.type), dataset: { type: ty.type } }),
    h("span", {}, h("code", { text: ty.type }), " — ", h("span", { text: lang() === "ru" ? ty.description_ru : ty.description }))));
  const events = h("fieldset", { class: "field", id: "sub-events" }, tx("legend", "subs.events", null, { class: "field__label" }), ...boxes);
  async function save() {
    const body = { name: name.value.trim(), url: url.value.trim(),
      event_types: boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value) };
    state.error = null;
    try {
      if (state.editing) {
        await api("PATCH", `/subscriptions/${state.editing.id}`, body);
        state.notice = { key: "subs.saved" };
      } else {
        state.secret = (await api("POST", "/subscriptions", body)).secret;
        state.notice = { key: "subs.saved" };
      }
      state.mode = "list";
      await load(true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return state.onError(err);
      state.error = err.message;
      render(true);
    }
  }
  async function remove() {
    const gone = state.editing;
    await act(async () => {
      await api("DELETE", `/subscriptions/${gone.id}`);
      state.notice = { key: "subs.deleted", params: { name: gone.name } };
      state.mode = "list";
    });
  }
  return h("div", { class: "admin__page" },
    h("header", { class: "admin__head" }, h("div", { class: "admin__titles" },
      tx("h2", state.editing ? "admin.edit" : "subs.new", null, { class: "admin__title" }))),
    ...notices(),
    h("div", { class: "card" }, field("subs.name", name), field("subs.url", url), events,
      h("div", { class: "admin__actions" },
        button("subs.save", save, "btn btn--primary", { id: "sub-save" }),
        button("subs.cancel", () => { state.mode = "list"; state.error = null; render(true); }, "btn"),
        state.editing ? button("subs.delete", remove, "btn btn--danger", { id: "sub-delete" }) : null)));
}

async function openLog(s, force) {
  try {
    state.log = await get(`/subscriptions/${s.id}/deliveries?limit=100`);
  } catch (err) {
    state.onError(err);
    return;
  }
  state.logFor = s;
  state.mode = "log";
  render(force);
}

function logView() {
  const s = state.logFor;
  const rows = state.log.items.map((d) => h("tr", { class: "delivery-row", dataset: { id: String(d.id), status: d.status } },
    h("td", {}, h("code", { text: d.event_type }), h("span", { class: "cell-sub", text: d.event_id })),
    h("td", { text: fullTime(d.occurred_at) }),
    h("td", {}, tx("span", `subs.status.${d.status}`, null, { class: ["badge", d.status === "delivered" ? "badge--resolved"
      : d.status === "failed" ? "badge--queued" : "badge--other"] })),
    h("td", { text: String(d.attempts) }),
    h("td", { text: d.last_error || (d.last_status_code ? `HTTP ${d.last_status_code}` : "—") }),
    h("td", { class: "cell-actions" }, d.status === "delivered" || d.status === "failed"
      ? button("subs.replay", () => replay(s, d), "btn btn--small delivery-replay") : null)));
  return h("div", { class: "admin__page" },
    h("header", { class: "admin__head" }, h("div", { class: "admin__titles" },
      tx("h2", "subs.log", null, { class: "admin__title" }), h("p", { class: "admin__lead", text: `${s.name} — ${s.url}` })),
    h("div", { class: "admin__actions" }, button("subs.back", () => { state.mode = "list"; load(true); }, "btn", { id: "sub-back" }))),
    ...notices(),
    rows.length ? h("div", { class: "card table-wrap" }, h("table", { class: "table", id: "delivery-table" },
      h("thead", {}, h("tr", {}, ...["subs.col.event", "subs.col.when", "subs.col.status", "subs.col.attempts",
        "subs.col.answer", "admin.col.actions"].map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
      h("tbody", {}, ...rows))) : tx("p", "subs.logEmpty", null, { class: "empty" }));
}

async function replay(s, d) {
  state.error = null;
  try {
    await api("POST", `/subscriptions/${s.id}/deliveries/${d.id}/replay`, {});
    state.notice = { key: "subs.replayed" };
  } catch (err) {
    state.error = err.message;
  }
  await openLog(s, true);
}
