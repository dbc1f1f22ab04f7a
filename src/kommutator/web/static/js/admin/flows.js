// The "Bot flows" administration screen: the list of flows, and an editor for one flow — its definition as JSON
// or YAML in a text area with the server's problems listed beside it (each with its place; a click selects it
// in the text), its channels, enable/disable and its versions. Registered with admin.js as the "flows" section.
// Everything from the server is put into the page as text (dom.js).

import "../texts/bot.js";
import { api, ApiError, get, post } from "../api.js";
import { h } from "../dom.js";
import { lang, t } from "../i18n.js";

// The screen's own styles (the CSP allows stylesheets from this server), so app.css stays as it is.
if (!document.querySelector('link[data-screen="flows"]')) {
  document.head.append(h("link", { attrs: { rel: "stylesheet", href: "/static/css/bot.css" }, dataset: { screen: "flows" } }));
}

const state = {
  root: null,
  onError: () => {},
  mode: "list", // list | edit
  flows: [],
  channels: [],
  flow: null, // the flow open in the editor (null: a new one)
  versions: [],
  problems: null, // null: not checked yet; else [{where, message, level}]
  notice: null, // {key, params}
  confirmDelete: false,
  signature: "",
};

// ---- the section interface admin.js calls ------------------------------------------------------------------

export const flowsScreen = {
  async show(root, { onError }) {
    const switching = state.root !== root || state.mode !== "list";
    state.root = root;
    state.onError = onError;
    state.mode = "list";
    if (switching) state.notice = null;
    await loadList(true);
  },
  async refresh() {
    if (state.mode === "list") await loadList(false);
  },
  langChanged() {
    if (state.mode === "list") renderList(true);
  },
};

// ---- builders ------------------------------------------------------------------------------------------------

function tx(tag, key, params, options = {}) {
  const dataset = { ...(options.dataset || {}), i18n: key };
  if (params) dataset.i18nArgs = JSON.stringify(params);
  return h(tag, { ...options, dataset, text: t(key, params || {}) });
}

function button(key, onClick, cls = "btn", props = {}) {
  return tx("button", key, null, { class: cls, type: "button", on: { click: onClick }, ...props });
}

function pageHead(title, lead, ...actions) {
  return h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" }, h("h2", { class: "admin__title" }, title), tx("p", lead, null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, ...actions));
}

function noticeBar() {
  if (!state.notice) return null;
  return h("div", { class: "notice", attrs: { role: "status" } },
    tx("span", state.notice.key, state.notice.params, { class: "notice__text" }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("banner.dismiss") }, text: "×",
      on: { click: () => { state.notice = null; renderList(true); } } }));
}

function failed(err) {
  if (err instanceof ApiError && err.status === 401) state.onError(err);
  return err;
}

// ---- the list ---------------------------------------------------------------------------------------------------

async function loadList(force) {
  try {
    const [flows, channels] = await Promise.all([get("/bot/flows"), get("/channels")]);
    state.flows = flows.items;
    state.channels = Array.isArray(channels) ? channels : [];
  } catch (err) {
    state.onError(err);
    return;
  }
  if (state.mode === "list") renderList(force);
}

function channelName(id) {
  const c = state.channels.find((x) => x.id === id);
  return c ? c.name : `#${id}`;
}

function renderList(force) {
  const signature = JSON.stringify([lang(), state.flows, state.channels, state.notice]);
  if (!force && signature === state.signature) return;
  state.signature = signature;
  const head = pageHead(tx("span", "bot.flows.title"), "bot.flows.lead",
    button("bot.flows.new", () => openEditor(null), "btn btn--primary", { id: "flow-new" }));
  let body;
  if (!state.flows.length) {
    body = h("div", { class: "card empty-card" }, tx("p", "bot.flows.empty"));
  } else {
    body = h("div", { class: "card table-wrap" }, h("table", { class: "table", id: "flow-table" },
      h("thead", {}, h("tr", {}, ...["admin.col.name", "bot.col.version", "admin.col.status", "bot.col.channels",
        "admin.col.actions"].map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
      h("tbody", {}, ...state.flows.map(flowRow))));
  }
  state.root.replaceChildren(h("div", { class: "admin__page" }, head, noticeBar(), body));
  state.root.dataset.section = "flows";
  state.root.dataset.mode = "list";
}

function flowRow(f) {
  return h("tr", { class: ["flow-row", f.enabled ? "" : "row--off"], dataset: { flowId: f.id } },
    h("td", {}, h("span", { class: "cell-title flow-row__name", text: f.name }),
      f.description ? h("span", { class: "cell-sub", text: f.description }) : null),
    h("td", { class: "flow-row__version" }, tx("span", "bot.version", { n: f.version })),
    h("td", {}, tx("span", f.enabled ? "admin.enabled" : "admin.disabled", null,
      { class: ["badge", f.enabled ? "badge--resolved" : "badge--other", "flow-row__enabled"] })),
    h("td", { class: "flow-row__channels" }, f.channel_ids.length
      ? f.channel_ids.map(channelName).join(", ") : h("span", { class: "muted", text: "—" })),
    h("td", { class: "cell-actions" },
      button("admin.edit", () => openEditor(f), "btn btn--small flow-edit"),
      button(f.enabled ? "admin.disable" : "admin.enable", (e) => toggle(f, e.currentTarget), "btn btn--small flow-toggle")));
}

async function toggle(f, btn) {
  btn.disabled = true;
  try {
    const saved = await api("PUT", `/bot/flows/${f.id}`, { enabled: !f.enabled });
    state.notice = { key: "bot.toggled", params: { name: saved.name, state: t(saved.enabled ? "admin.enabled" : "admin.disabled") } };
    await loadList(true);
  } catch (err) {
    btn.disabled = false;
    state.onError(failed(err));
  }
}

// ---- the editor -------------------------------------------------------------------------------------------------

async function openEditor(flow) {
  state.mode = "edit";
  state.problems = null;
  state.confirmDelete = false;
  state.versions = [];
  let source;
  try {
    if (flow) {
      const [full, versions] = await Promise.all([get(`/bot/flows/${flow.id}`), get(`/bot/flows/${flow.id}/versions`)]);
      state.flow = full;
      state.versions = versions.items;
      source = full.definition;
      state.problems = full.warnings;
    } else {
      state.flow = null;
      source = await get("/bot/default-flow");
    }
  } catch (err) {
    state.mode = "list";
    state.onError(failed(err));
    return;
  }
  renderEditor(JSON.stringify(source, null, 2));
}

function field(labelKey, control, hintKey) {
  const id = control.id;
  return h("div", { class: "field" }, tx("label", labelKey, null, { class: "field__label", attrs: { for: id } }), control,
    hintKey ? tx("p", hintKey, null, { class: "field__hint" }) : null);
}

function renderEditor(text) {
  const f = state.flow;
  const name = h("input", { type: "text", id: "flow-name", value: f ? f.name : "", attrs: { maxlength: 100, required: true } });
  const description = h("input", { type: "text", id: "flow-description", value: f ? f.description : "", attrs: { maxlength: 2000 } });
  const enabled = h("input", { type: "checkbox", id: "flow-enabled", checked: f ? f.enabled : true });
  const attached = new Set(f ? f.channel_ids : []);
  const channels = state.channels.length
    ? h("ul", { class: "flow-channels", id: "flow-channels" }, ...state.channels.map((c) => h("li", {},
      h("label", { class: "toggle" }, h("input", { type: "checkbox", value: String(c.id), checked: attached.has(c.id) }),
        h("span", { text: c.name }), h("span", { class: "type-tag", text: c.type })))))
    : tx("p", "bot.flow.noChannels", null, { class: "muted" });
  const area = h("textarea", { id: "flow-source", class: "flow-source", value: text,
    attrs: { spellcheck: "false", rows: 30, "aria-describedby": "flow-problems" } });
  const problems = h("div", { class: "flow-problems", id: "flow-problems", attrs: { "aria-live": "polite" } });
  const formError = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
  const collect = () => ({
    name: name.value.trim(), description: description.value.trim(), enabled: enabled.checked,
    channel_ids: [...state.root.querySelectorAll("#flow-channels input:checked")].map((x) => Number(x.value)),
    source: area.value,
  });
  const save = async (event) => {
    event.preventDefault();
    const submit = form.querySelector(".form-submit");
    submit.disabled = true;
    formError.hidden = true;
    try {
      const body = collect();
      const saved = f ? await api("PUT", `/bot/flows/${f.id}`, body) : await post("/bot/flows", body);
      state.notice = saved.warnings.length
        ? { key: "bot.savedWarnings", params: { name: saved.name, version: saved.version, n: saved.warnings.length } }
        : { key: "bot.saved", params: { name: saved.name, version: saved.version } };
      state.mode = "list";
      await loadList(true);
    } catch (err) {
      showError(err, problems, area, formError);
    } finally {
      submit.disabled = false;
    }
  };
  const check = async () => {
    formError.hidden = true;
    try {
      const result = await post("/bot/flows/validate", { source: area.value });
      state.problems = result.problems;
      drawProblems(problems, area);
    } catch (err) {
      showError(err, problems, area, formError);
    }
  };
  const cancel = () => { state.mode = "list"; renderList(true); };
  const form = h("form", { class: "admin-form flow-form", id: "flow-form", attrs: { novalidate: true }, on: { submit: save } },
    h("fieldset", { class: "form-section" }, tx("legend", "bot.flow.general", null, { class: "form-section__title" }),
      h("div", { class: "form-grid" }, field("bot.flow.name", name), field("bot.flow.description", description)),
      h("div", { class: "field field--check" }, h("label", { class: "toggle" }, enabled, tx("span", "bot.flow.enabled")),
        tx("p", "bot.flow.enabledHint", null, { class: "field__hint" })),
      h("div", { class: "field" }, tx("span", "bot.flow.channels", null, { class: "field__label" }), channels,
        tx("p", "bot.flow.channelsHint", null, { class: "field__hint" }))),
    h("fieldset", { class: "form-section" }, tx("legend", "bot.flow.definition", null, { class: "form-section__title" }),
      h("div", { class: "flow-editor" },
        h("div", { class: "flow-editor__text" }, area,
          h("div", { class: "flow-editor__bar" }, button("bot.flow.check", check, "btn flow-check"))),
        h("aside", { class: "flow-editor__problems" }, tx("h3", "bot.problems", null, { class: "flow-problems__title" }),
          problems))),
    state.versions.length ? versionsSection(area) : null,
    h("div", { class: "form-footer" }, formError,
      h("div", { class: "form-footer__buttons" },
        f ? deleteControl(f) : null,
        button("admin.cancel", cancel, "btn form-cancel"),
        tx("button", f ? "bot.flow.save" : "bot.flow.create", null, { class: "btn btn--primary form-submit", type: "submit" }))));
  const title = f ? tx("span", "bot.flow.editTitle", { name: f.name }) : tx("span", "bot.flow.newTitle");
  state.root.replaceChildren(h("div", { class: "admin__page" }, pageHead(title, "bot.flow.lead"), h("div", { class: "card" }, form)));
  state.root.dataset.mode = "edit";
  drawProblems(problems, area);
  name.focus();
}

function deleteControl(f) {
  if (!state.confirmDelete) {
    return button("bot.flow.delete", () => { state.confirmDelete = true; rerender(); }, "btn btn--danger flow-delete");
  }
  return h("span", { class: "flow-confirm", attrs: { role: "alert" } },
    tx("span", "bot.flow.confirmDelete", { name: f.name }),
    button("bot.flow.confirmYes", async () => {
      try {
        await api("DELETE", `/bot/flows/${f.id}`);
        state.notice = { key: "bot.deleted", params: { name: f.name } };
        state.mode = "list";
        await loadList(true);
      } catch (err) {
        state.onError(failed(err));
      }
    }, "btn btn--danger flow-delete-yes"),
    button("admin.cancel", () => { state.confirmDelete = false; rerender(); }, "btn btn--small"));
}

function rerender() {
  const area = state.root.querySelector("#flow-source");
  renderEditor(area ? area.value : "");
}

function versionsSection(area) {
  return h("fieldset", { class: "form-section" }, tx("legend", "bot.versions", null, { class: "form-section__title" }),
    tx("p", "bot.versions.lead", null, { class: "form-section__lead" }),
    h("ul", { class: "flow-versions", id: "flow-versions" }, ...state.versions.map((v) => h("li", {},
      tx("span", "bot.version", { n: v.version }, { class: "cell-title" }),
      h("span", { class: "muted", text: new Date(v.created_at).toLocaleString(lang()) }),
      button("bot.versions.load", async () => {
        try {
          const full = await get(`/bot/flows/${state.flow.id}/versions/${v.version}`);
          area.value = JSON.stringify(full.definition, null, 2);
        } catch (err) {
          state.onError(failed(err));
        }
      }, "btn btn--small flow-version-load")))));
}

function showError(err, box, area, formError) {
  if (err instanceof ApiError && err.status === 422 && err.errors.length && err.errors[0].where !== undefined) {
    state.problems = err.errors;
    drawProblems(box, area);
    return;
  }
  failed(err);
  formError.textContent = err instanceof ApiError
    ? (err.status === 0 ? t("error.network") : err.detail || t("error.generic", { status: err.status }))
    : String((err && err.message) || err);
  formError.hidden = false;
}

function drawProblems(box, area) {
  const problems = state.problems;
  if (problems === null) {
    box.replaceChildren(tx("p", "bot.problems.unchecked", null, { class: "muted" }));
    return;
  }
  if (!problems.length) {
    box.replaceChildren(tx("p", "bot.problems.none", null, { class: "flow-problems__ok" }));
    return;
  }
  const errors = problems.filter((p) => p.level === "error").length;
  box.replaceChildren(
    tx("p", "bot.problems.count", { errors, warnings: problems.length - errors }, { class: "flow-problems__count" }),
    h("ol", { class: "flow-problems__list" }, ...problems.map((p) => h("li", { class: ["flow-problem", `flow-problem--${p.level}`] },
      h("button", { type: "button", class: "flow-problem__where", text: p.where, on: { click: () => reveal(area, p.where) } }),
      tx("span", `bot.level.${p.level}`, null, { class: ["badge", p.level === "error" ? "badge--queued" : "badge--other"] }),
      h("span", { class: "flow-problem__message", text: p.message })))));
}

/** Select the text of a problem's place, e.g. nodes.ask_order.next: the "next" key inside "ask_order". */
function reveal(area, where) {
  const keys = where.replace(/\[\d+\]/g, "").split(".").filter((k) => k && !k.startsWith("("));
  let at = 0;
  let found = -1;
  let length = 0;
  for (const key of keys) {
    const name = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    // A key, not a value: "key": in JSON, key: at the start of a YAML line.
    const pattern = new RegExp(`"${name}"\\s*:|^[ \\t-]*${name}\\s*:`, "gm");
    pattern.lastIndex = at;
    const match = pattern.exec(area.value);
    if (!match) break;
    found = match.index + match[0].indexOf(key) - (match[0].startsWith('"') ? 1 : 0);
    length = key.length + (match[0].startsWith('"') ? 2 : 0);
    at = pattern.lastIndex;
  }
  area.focus();
  if (found >= 0) {
    area.setSelectionRange(found, found + length);
    const line = area.value.slice(0, found).split("\n").length;
    area.scrollTop = Math.max(0, (line - 5) * parseFloat(getComputedStyle(area).lineHeight || "18"));
  }
}
