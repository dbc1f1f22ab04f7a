// The "Bot intents" administration screen: the intents the bot understands (shipped ones read-only, the
// business's own editable: name, description, example phrases and synonyms in Russian and English, one per
// line), training in the background with its state, and the validation report (per-intent precision and
// recall by cross-validation, the most-confused pairs) per language. Registered with admin.js as "intents".
// Everything from the server is put into the page as text (dom.js).

import "../texts/intents.js";
import { api, ApiError, get } from "../api.js";
import { h } from "../dom.js";
import { lang, t } from "../i18n.js";
import { button, tx } from "./kit.js";

const state = { root: null, onError: () => {}, mode: "list", intents: [], training: false, version: null,
  report: null, reportLang: "ru", editing: null, error: null, notice: null, signature: "" };

export const intentsScreen = {
  async show(root, { onError }) {
    state.root = root;
    state.onError = onError;
    state.mode = "list";
    await load(true);
  },
  async refresh() {
    if (state.mode === "list") await load(false);
  },
  langChanged() {
    render(true);
  },
};

async function load(force) {
  const mode = state.mode;  // a reload that ends after the administrator opened the editor leaves it alone
  try {
    const list = await get("/bot/intents");
    state.intents = list.items;
    state.training = list.training;
    state.version = list.model_version;
    // the report exists once a model for the language is trained (asking before would be a 404)
    const models = await get("/bot/intents/models");
    const ready = models.items.some((m) => m.language === state.reportLang && m.status === "ready");
    state.report = ready ? await get(`/bot/intents/report?language=${state.reportLang}`) : null;
  } catch (err) {
    state.onError(err);
    return;
  }
  if (state.mode !== mode) return;
  render(force);
}

function render(force) {
  if (!state.root) return;
  const signature = JSON.stringify([lang(), state.mode, state.intents, state.training, state.report, state.notice,
    state.error, state.editing && state.editing.id]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  state.root.replaceChildren(state.mode === "edit" ? editor() : list());
  state.root.dataset.section = "intents";
  state.root.dataset.mode = state.mode;
}

function list() {
  const status = state.training ? tx("span", "intents.training", null, { class: "badge badge--other", id: "intent-status" })
    : tx("span", "intents.ready", { v: state.version ?? "—" }, { class: "badge badge--resolved", id: "intent-status" });
  const head = h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" }, tx("h2", "intents.title", null, { class: "admin__title" }),
      tx("p", "intents.lead", null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, status,
      button("intents.train", train, "btn", { id: "intent-train" }),
      button("intents.new", () => edit(null), "btn btn--primary", { id: "intent-new" })));
  const notice = state.notice ? tx("div", state.notice.key, state.notice.params, { class: "notice", attrs: { role: "status" } }) : null;
  const rows = state.intents.map((i) => h("tr", { class: "intent-row", dataset: { name: i.name } },
    h("td", {}, h("span", { class: "cell-title intent-row__name", text: i.name }),
      i.description ? h("span", { class: "cell-sub", text: i.description }) : null),
    h("td", {}, tx("span", i.builtin ? "intents.builtin" : "intents.custom", null,
      { class: ["badge", i.builtin ? "badge--other" : "badge--resolved"] })),
    h("td", { class: "intent-row__count" }, h("span", { text: `${(i.examples.ru || []).length} / ${(i.examples.en || []).length}` })),
    h("td", { class: "cell-actions" }, i.builtin ? null : button("admin.edit", () => edit(i), "btn btn--small intent-edit"))));
  const table = h("div", { class: "card table-wrap" }, h("table", { class: "table", id: "intent-table" },
    h("thead", {}, h("tr", {}, ...["admin.col.name", "intents.col.kind", "intents.col.examples", "admin.col.actions"]
      .map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
    h("tbody", {}, ...rows)));
  return h("div", { class: "admin__page" }, head, notice, table, reportCard());
}

function reportCard() {
  const switcher = h("div", { class: "admin__actions" }, ...["ru", "en"].map((l) => h("button", {
    class: ["btn", "btn--small", l === state.reportLang ? "btn--primary" : ""], type: "button", text: l.toUpperCase(),
    dataset: { reportLang: l }, on: { click: async () => { state.reportLang = l; await load(true); } } })));
  if (!state.report) {
    return h("section", { class: "card", id: "intent-report" }, tx("h3", "intents.report"), switcher, tx("p", "intents.noReport"));
  }
  const r = state.report;
  const pct = (x) => `${Math.round(x * 100)}%`;
  return h("section", { class: "card", id: "intent-report" }, tx("h3", "intents.report"), switcher,
    tx("p", "intents.summary", { v: r.version, acc: pct(r.in_scope_accuracy), rej: pct(r.withheld_rejection),
      thr: r.threshold.toFixed(2) }, { class: "intent-report__summary" }),
    h("table", { class: "table", id: "intent-perf" },
      h("thead", {}, h("tr", {}, ...["intents.col.intent", "intents.col.precision", "intents.col.recall"]
        .map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
      h("tbody", {}, ...r.per_intent.map((p) => h("tr", { dataset: { intent: p.intent } },
        h("td", { text: p.intent }), h("td", { text: pct(p.precision) }), h("td", { text: pct(p.recall) }))))),
    tx("h4", "intents.confused"),
    h("ul", { id: "intent-confused" }, ...r.confused.map((c) =>
      tx("li", "intents.pair", { a: c.expected, b: c.predicted, n: c.count }))));
}

function lines(text) {
  return text.split("\n").map((s) => s.trim()).filter(Boolean);
}

function editor() {
  const i = state.editing || { name: "", description: "", examples: {}, synonyms: {} };
  const field = (key, input) => h("label", { class: "field" }, tx("span", key, null, { class: "field__label" }), input);
  const area = (id, values) => h("textarea", { id, attrs: { rows: "6" }, value: (values || []).join("\n") });
  const name = h("input", { id: "intent-name", value: i.name, attrs: { autocomplete: "off" } });
  const description = h("input", { id: "intent-description", value: i.description });
  const exRu = area("intent-examples-ru", i.examples.ru);
  const exEn = area("intent-examples-en", i.examples.en);
  const synRu = area("intent-synonyms-ru", i.synonyms.ru);
  const synEn = area("intent-synonyms-en", i.synonyms.en);
  async function save() {
    const body = { name: name.value.trim(), description: description.value,
      examples: { ru: lines(exRu.value), en: lines(exEn.value) }, synonyms: { ru: lines(synRu.value), en: lines(synEn.value) } };
    try {
      if (state.editing) await api("PUT", `/bot/intents/${state.editing.id}`, body);
      else await api("POST", "/bot/intents", body);
      state.notice = { key: "intents.saved", params: { name: body.name } };
      state.mode = "list";
      state.error = null;
      await load(true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return state.onError(err);
      state.error = err.message;
      render(true);
    }
  }
  async function remove() {
    try {
      await api("DELETE", `/bot/intents/${state.editing.id}`);
      state.notice = { key: "intents.deleted", params: { name: state.editing.name } };
      state.mode = "list";
      await load(true);
    } catch (err) {
      state.error = err.message;
      render(true);
    }
  }
  return h("div", { class: "admin__page" },
    h("header", { class: "admin__head" }, h("div", { class: "admin__titles" },
      tx("h2", state.editing ? "intents.editTitle" : "intents.newTitle", { name: i.name }, { class: "admin__title" }),
      tx("p", "intents.editLead", null, { class: "admin__lead" }))),
    state.error ? h("div", { class: "notice notice--error", id: "intent-error", attrs: { role: "alert" }, text: state.error }) : null,
    h("div", { class: "card" }, field("intents.name", name), field("intents.description", description),
      field("intents.examplesRu", exRu), field("intents.examplesEn", exEn),
      field("intents.synonymsRu", synRu), field("intents.synonymsEn", synEn),
      h("div", { class: "admin__actions" },
        button("intents.save", save, "btn btn--primary", { id: "intent-save" }),
        button("intents.cancel", () => { state.mode = "list"; state.error = null; render(true); }, "btn"),
        state.editing ? button("intents.delete", remove, "btn btn--danger", { id: "intent-delete" }) : null)));
}

function edit(intent) {
  state.editing = intent;
  state.mode = "edit";
  state.error = null;
  render(true);
}

async function train() {
  try {
    await api("POST", "/bot/intents/train", {});
    state.notice = { key: "intents.trainRequested" };
    await load(true);
  } catch (err) {
    state.onError(err);
  }
}
