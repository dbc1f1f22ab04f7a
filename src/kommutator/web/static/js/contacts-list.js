// The contacts list (#contacts): every customer the user may see (agents: those they manage or talk to), with
// search and filters by segment, conversation label, preferred channel and personal manager; supervisors and
// administrators export the same selection as CSV (GET /contacts/export streams it). Names and values from
// customers go in as text.

import "./texts/directory.js";
import { get } from "./api.js";
import { h } from "./dom.js";
import { lang, t } from "./i18n.js";
import { channelIcon } from "./icons.js";
import { standaloneSection } from "./section.js";

const TYPES = ["webchat", "telegram", "vk", "whatsapp", "sms", "email", "api"];
const PAGE = 50;
const DELAY_MS = 250;
const isSupervisor = (me) => me.role === "admin" || me.role === "supervisor";
const ui = { form: null, rows: null, more: null, count: null, exportLink: null, users: new Map() };
const state = { items: [], cursor: null, seq: 0, timer: null, me: null };

function filters() {
  const p = new URLSearchParams();
  for (const [key, id] of [["q", "cl-q"], ["segment", "cl-segment"], ["label", "cl-label"],
    ["preferred_channel", "cl-channel"], ["manager_id", "cl-manager"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) p.set(key, value);
  }
  return p;
}

function labelled(key, control) {
  return h("label", { class: "field cl-filter" }, h("span", { class: "field__label", text: t(key) }), control);
}

function build(view, me) {
  state.me = me;
  const typed = () => {
    if (state.timer !== null) window.clearTimeout(state.timer);
    state.timer = window.setTimeout(() => load(false), DELAY_MS);
  };
  const text = (id, max) => h("input", { attrs: { id, type: "search", maxlength: max }, on: { input: typed } });
  const channel = h("select", { attrs: { id: "cl-channel" }, on: { change: () => load(false) } },
    h("option", { attrs: { value: "" }, text: t("cl.any") }),
    TYPES.map((x) => h("option", { attrs: { value: x }, text: t(`cl.type.${x}`) })));
  const manager = h("select", { attrs: { id: "cl-manager" }, on: { change: () => load(false) } },
    h("option", { attrs: { value: "" }, text: t("cl.any") }));
  ui.exportLink = h("a", { class: "btn", attrs: { id: "cl-export", href: "/api/v1/contacts/export", download: "" },
    text: t("cl.export") });
  ui.count = h("p", { class: "muted cl-count", attrs: { role: "status" } });
  ui.rows = h("tbody", {});
  ui.more = h("button", { class: "btn", attrs: { type: "button", id: "cl-more" }, text: t("cl.more"), hidden: true,
    on: { click: () => load(true) } });
  ui.form = h("form", { class: "cl-filters", attrs: { role: "search" }, on: { submit: (e) => e.preventDefault() } },
    labelled("cl.search", text("cl-q", 200)), labelled("cl.segment", text("cl-segment", 100)),
    labelled("cl.label", text("cl-label", 50)), labelled("cl.channel", channel), labelled("cl.manager", manager));
  view.replaceChildren(h("div", { class: "admin__page" },
    h("header", { class: "admin__head" },
      h("div", { class: "admin__titles" }, h("h2", { class: "admin__title", text: t("cl.title") }),
        h("p", { class: "admin__lead", text: t("cl.lead") })),
      h("div", { class: "admin__actions" }, isSupervisor(me) ? ui.exportLink : null)),
    ui.form,
    h("div", { class: "card table-wrap" }, h("table", { class: "table", attrs: { id: "contacts-table" } },
      h("thead", {}, h("tr", {}, ["cl.col.name", "cl.col.contact", "cl.col.channel", "cl.col.segment",
        "cl.col.manager", "cl.col.since"].map((k) => h("th", { text: t(k) })))),
      ui.rows)),
    ui.count, ui.more));
}

async function loadManagers(keep = null) {
  try {
    const users = await get("/users?limit=200");
    ui.users = new Map(users.items.map((u) => [u.id, u.name]));
  } catch {
    ui.users = new Map(); // agents may not list users: the manager filter then offers only themselves
    if (state.me) ui.users.set(state.me.id, state.me.name);
  }
  const select = document.getElementById("cl-manager");
  if (!select) return;
  const kept = keep === null ? select.value : keep;
  select.replaceChildren(h("option", { attrs: { value: "" }, text: t("cl.any") }),
    ...[...ui.users].map(([id, name]) => h("option", { attrs: { value: id }, text: name })));
  select.value = kept;
}

async function load(more) {
  if (!document.getElementById("cl-q")) return; // the section was left before a delayed search ran
  const seq = ++state.seq;
  const p = filters();
  ui.exportLink.href = `/api/v1/contacts/export${p.toString() ? `?${p}` : ""}`;
  p.set("limit", String(PAGE));
  if (more && state.cursor) p.set("cursor", state.cursor);
  let page;
  try {
    page = await get(`/contacts?${p}`);
  } catch (err) {
    if (seq === state.seq) ui.count.textContent = String(err.detail || err.message || err);
    return;
  }
  if (seq !== state.seq) return;
  state.items = more ? [...state.items, ...page.items] : page.items;
  state.cursor = page.next_cursor;
  render();
}

function render() {
  const day = new Intl.DateTimeFormat(lang(), { day: "numeric", month: "short", year: "numeric" });
  ui.rows.replaceChildren(...(state.items.length ? state.items.map((c) => h("tr", { dataset: { contactId: c.id } },
    h("td", { class: "cl-name", text: c.name || t("cl.unnamed") }),
    h("td", { text: [c.email, c.phone].filter(Boolean).join(" · ") }),
    h("td", { class: "cl-channel", dataset: { channelType: c.preferred_channel || "" } },
      c.preferred_channel ? channelIcon(c.preferred_channel) : null,
      c.preferred_channel ? ` ${t(`cl.type.${c.preferred_channel}`)}` : "—"),
    h("td", { class: "cl-segment", text: c.attributes && c.attributes.segment ? String(c.attributes.segment) : "" }),
    h("td", { class: "cl-manager", text: c.manager_id ? ui.users.get(c.manager_id) || `#${c.manager_id}` : "" }),
    h("td", { text: day.format(new Date(c.created_at)) })))
    : [h("tr", {}, h("td", { attrs: { colspan: 6 }, class: "empty", text: t("cl.empty") }))]));
  ui.count.textContent = t("cl.count", { n: state.items.length });
  ui.more.hidden = !state.cursor;
}

standaloneSection({
  name: "contacts",
  navKey: "cl.nav",
  allowed: () => true, // the list itself shows each user only the contacts they may see
  navFor: isSupervisor, // agents have no top bar; they open #contacts (as #reports)
  build,
  shown: async () => {
    await loadManagers();
    load(false);
  },
  langChanged: (view, me) => {
    const kept = [...view.querySelectorAll("input, select")].map((x) => [x.id, x.value]);
    build(view, me);
    for (const [id, value] of kept) document.getElementById(id).value = value;
    loadManagers(new Map(kept).get("cl-manager") || "").then(() => load(false));
  },
});
