// The "Message templates" administration screen: the templates agents and campaigns write with (name and
// language as approved at the provider, category, body with {{parameter}} placeholders and the parameters in
// the provider template's order, WhatsApp approval). List, create, edit, delete; a refusal is shown beside the
// field the server names (admin/kit.js form). Registered with admin.js as "templates". Everything from the
// server is put into the page as text (dom.js).
//
// A list reload (the periodic refresh, or one started before the form opened) only ever redraws the list: once
// a form is open it is left alone, so nothing the administrator typed is lost.

import "../texts/templates.js";
import { api, ApiError, get } from "../api.js";
import { h } from "../dom.js";
import { lang } from "../i18n.js";
import { button, chips, errorText, field, form, input, notice, pageHead, select, table, tx } from "./kit.js";

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
const state = { root: null, onError: () => {}, mode: "list", items: [], editing: null, confirmDelete: null,
  notice: null, error: null, signature: "", loaded: false, loads: 0 };

export const templatesScreen = {
  async show(root, { onError }) {
    state.root = root;
    state.onError = onError;
    state.mode = "list";
    state.confirmDelete = null;
    state.signature = "";
    if (state.loaded) render(true); // the list as last read, until the fresh one comes
    else root.replaceChildren(tx("p", "app.loading", null, { class: "empty" }));
    await load(true);
  },
  async refresh() {
    if (state.mode === "list") await load(false);
  },
  langChanged() {
    if (state.mode === "list") render(true); // a form's labels are data-i18n: translated in place, input kept
  },
};

async function load(force) {
  try {
    state.items = (await get("/message-templates")).items;
    state.error = null;
    state.loaded = true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return state.onError(err);
    state.error = errorText(err);
  }
  if (state.root) state.root.dataset.loads = String(++state.loads); // lets a test know a reload has landed
  if (state.mode === "list") render(force);
}

function render(force) {
  if (!state.root || state.mode !== "list") return;
  const signature = JSON.stringify([lang(), state.items, state.notice, state.error, state.confirmDelete]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  state.root.replaceChildren(list());
  state.root.dataset.section = "templates";
  state.root.dataset.mode = "list";
}

function parameters(body) {
  return [...new Set([...body.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

function list() {
  const head = pageHead("tpl.title", "tpl.lead",
    button("tpl.new", () => openForm(null), "btn btn--primary", { id: "tpl-new" }));
  const told = state.notice ? notice(state.notice.key, state.notice.params, () => {
    state.notice = null;
    render(true);
  }) : null;
  const failed = state.error ? h("div", { class: "notice notice--error", id: "tpl-error", attrs: { role: "alert" },
    text: state.error }) : null;
  const confirm = state.confirmDelete ? h("div", { class: "card notice", id: "tpl-confirm", attrs: { role: "alert" } },
    tx("span", "tpl.confirmDelete", { name: state.confirmDelete.name, language: state.confirmDelete.language }),
    h("div", { class: "admin__actions" },
      button("admin.delete", () => remove(state.confirmDelete), "btn btn--danger", { id: "tpl-confirm-delete" }),
      button("admin.cancel", () => { state.confirmDelete = null; render(true); }, "btn"))) : null;
  const rows = state.items.map((x) => h("tr", { class: "tpl-row", dataset: { name: x.name, language: x.language } },
    h("td", {}, h("span", { class: "cell-title tpl-row__name", text: x.name }),
      h("span", { class: "cell-sub tpl-row__body", text: x.body })),
    h("td", { class: "tpl-row__language", text: x.language }),
    h("td", {}, tx("span", `tpl.category.${x.category}`)),
    h("td", { class: "tpl-row__params" }, chips(x.parameters)),
    h("td", {}, tx("span", "tpl.whatsapp", { name: x.name }, { class: "cell-sub" }),
      tx("span", x.approved ? "tpl.approved" : "tpl.pending", null,
        { class: ["badge", "tpl-row__approval", x.approved ? "badge--resolved" : "badge--other"] })),
    h("td", { class: "cell-actions" },
      button("admin.edit", () => openForm(x), "btn btn--small tpl-edit"),
      button("admin.delete", () => { state.confirmDelete = x; render(true); }, "btn btn--small tpl-delete"))));
  return h("div", { class: "admin__page" }, head, told, failed, confirm,
    table("tpl-table", ["admin.col.name", "tpl.col.language", "tpl.col.category", "tpl.col.parameters",
      "tpl.col.channels", "admin.col.actions"], rows, "tpl.empty"));
}

function openForm(template) {
  state.mode = "edit";
  state.editing = template;
  state.confirmDelete = null;
  state.signature = "";
  const x = template || { name: "", language: lang(), category: "utility", body: "", parameters: [], approved: true };
  const name = input(x.name, { id: "tpl-name", maxlength: "120", autocomplete: "off" });
  const language = input(x.language, { id: "tpl-language", maxlength: "12", list: "tpl-languages" });
  const languages = h("datalist", { id: "tpl-languages" }, ...["ru", "en", "en_US"].map((v) => h("option", { value: v })));
  const category = select([{ value: "utility", key: "tpl.category.utility" },
    { value: "marketing", key: "tpl.category.marketing" }], x.category, { id: "tpl-category" });
  const body = h("textarea", { id: "tpl-body", value: x.body, attrs: { rows: "5", maxlength: "1024" } });
  const params = input(x.parameters.join(", "), { id: "tpl-parameters" });
  const fromBody = button("tpl.fromBody", () => { params.value = parameters(body.value).join(", "); }, "btn btn--small",
    { id: "tpl-from-body" });
  const approved = h("input", { type: "checkbox", id: "tpl-approved", checked: Boolean(x.approved) });
  // While the parameters were never typed by hand they follow the body's placeholders in order.
  let followBody = !template || parameters(x.body).join(",") === x.parameters.join(",");
  params.addEventListener("input", () => { followBody = false; });
  body.addEventListener("input", () => { if (followBody) params.value = parameters(body.value).join(", "); });

  async function save() {
    const data = { name: name.value.trim(), language: language.value.trim(), category: category.value,
      body: body.value, parameters: params.value.split(",").map((s) => s.trim()).filter(Boolean),
      approved: approved.checked };
    const saved = template ? await api("PATCH", `/message-templates/${template.id}`, data)
      : await api("POST", "/message-templates", data);
    state.notice = { key: template ? "tpl.saved" : "tpl.created", params: { name: saved.name } };
    close();
    await load(true);
  }

  const el = form("tpl-form", template ? "admin.save" : "tpl.create", () => { close(); render(true); }, save,
    state.onError,
    field("tpl.name", name, { path: "name", hintKey: "tpl.nameHint", required: true }),
    field("tpl.language", language, { path: "language", hintKey: "tpl.languageHint", required: true }), languages,
    field("tpl.category", category, { path: "category" }),
    field("tpl.body", body, { path: "body", hintKey: "tpl.bodyHint", required: true }),
    h("div", { class: "tpl-params" }, field("tpl.parameters", params, { path: "parameters", hintKey: "tpl.parametersHint" }),
      fromBody),
    h("label", { class: "field field--check" }, approved, tx("span", "tpl.approvedLabel")));
  state.root.replaceChildren(h("div", { class: "admin__page" },
    pageHead(template ? "tpl.editTitle" : "tpl.newTitle", "tpl.formLead"), el));
  state.root.dataset.section = "templates";
  state.root.dataset.mode = "edit";
  setTimeout(() => name.focus(), 0);
}

function close() {
  state.mode = "list";
  state.editing = null;
}

async function remove(template) {
  try {
    await api("DELETE", `/message-templates/${template.id}`);
    state.notice = { key: "tpl.deleted", params: { name: template.name } };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return state.onError(err);
    state.error = errorText(err);
  }
  state.confirmDelete = null;
  await load(true);
}
