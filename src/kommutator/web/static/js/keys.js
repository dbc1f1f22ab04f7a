// Keyboard shortcuts of the workspace, their help overlay ("?") and the command palette (Ctrl+K / ⌘K): search
// conversations and contacts and run actions without the mouse. Letter shortcuts never fire while the user types
// in a field (Ctrl+K does, and the reply box keeps its own Ctrl+Enter). Loaded by its own <script> tag; it drives
// the workspace through its buttons and window.kommutator.openConversation, so a shortcut does exactly what the
// click does (permissions included: the server refuses what the user may not do).

import "./texts/keys.js";
import { get } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const SHORTCUTS = [["J", "keys.next"], ["K", "keys.prev"], ["E", "keys.resolve"], ["A", "keys.assign"],
  ["R", "keys.reply"], ["Ctrl+K", "keys.palette"], ["Ctrl+Enter", "keys.send"], ["?", "keys.help"]];
const DELAY_MS = 200;
const palette = { dialog: null, input: null, list: null, items: [], active: 0, seq: 0, timer: null };

const visible = (el) => Boolean(el) && !el.hidden && el.offsetParent !== null;
const inWorkspace = () => visible(document.getElementById("workspace-view"));
const inInbox = () => visible(document.getElementById("inbox-view"));

function typing(target) {
  if (!target || !(target instanceof Element)) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"));
}

function click(id) {
  const button = document.getElementById(id);
  if (visible(button) && !button.disabled) button.click();
}

/** The next (+1) or previous (-1) row of the list, from the open conversation (the first row when none is). */
function step(delta) {
  const rows = [...document.querySelectorAll("#conversation-list .conv-row")];
  if (!rows.length) return;
  const selected = window.kommutator && window.kommutator.selectedId ? window.kommutator.selectedId() : null;
  const at = rows.findIndex((r) => Number(r.dataset.id) === selected);
  const next = at < 0 ? (delta > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, at + delta));
  if (next === at) return;
  const row = rows[next];
  (row.querySelector("button, a") || row).click();
  row.scrollIntoView({ block: "nearest" });
}

// ---- help -------------------------------------------------------------------------------------------------------

function showHelp() {
  const old = document.getElementById("keys-help");
  if (old) {
    old.close();
    return;
  }
  const d = h("dialog", { class: "kdialog keys-help", attrs: { id: "keys-help", "aria-labelledby": "keys-help-title" } },
    h("header", { class: "kdialog__head" }, h("h2", { class: "kdialog__title", attrs: { id: "keys-help-title" },
      text: t("keys.title") }),
    h("button", { class: "banner__close", attrs: { type: "button", "aria-label": t("keys.close") }, text: "×",
      on: { click: () => d.close() } })),
    h("div", { class: "kdialog__body" },
      h("table", { class: "keys-table" }, h("tbody", {}, SHORTCUTS.map(([key, what]) => h("tr", {},
        h("td", {}, ...key.split("+").flatMap((k, i) => (i ? ["+", h("kbd", { text: k })] : [h("kbd", { text: k })]))),
        h("td", { text: t(what) }))))),
      h("p", { class: "muted", text: t("keys.note") })));
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
}

// ---- the command palette ----------------------------------------------------------------------------------------

function actions() {
  const list = [];
  const add = (key, run, when = true) => { if (when) list.push({ group: "actions", text: t(key), run, id: key }); };
  add("keys.resolve", () => click("btn-resolve"), visible(document.getElementById("btn-resolve")));
  add("keys.assign", () => click("btn-assign-me"), visible(document.getElementById("btn-assign-me")));
  add("pal.go.inbox", () => { window.location.hash = ""; });
  add("pal.go.contacts", () => { window.location.hash = "contacts"; });
  add("pal.go.reports", () => { window.location.hash = "reports"; });
  add("pal.go.kb", () => { window.location.hash = "kb"; },
    Boolean(document.querySelector('#main-nav [data-own-section="kb"]')));
  add("keys.help", showHelp);
  return list;
}

function openConversation(id) {
  if (window.kommutator && window.kommutator.openConversation) window.kommutator.openConversation(id);
}

async function search() {
  const q = palette.input.value.trim();
  const seq = ++palette.seq;
  const words = q.toLowerCase();
  const items = actions().filter((a) => !words || a.text.toLowerCase().includes(words));
  if (q.length >= 2) {
    const p = new URLSearchParams({ q, limit: "6" });
    const [convs, contacts] = await Promise.allSettled([get(`/conversations?${p}&view=all`),
      get(`/contacts?${p}`)]);
    if (seq !== palette.seq) return;
    if (convs.status === "fulfilled") {
      for (const c of convs.value.items) {
        items.push({ group: "conversations", id: `conv-${c.id}`, run: () => openConversation(c.id),
          text: t("pal.conv", { id: c.id, name: c.contact_name || (c.contact && c.contact.name) || "" }) });
      }
    }
    if (contacts.status === "fulfilled") {
      for (const c of contacts.value.items) {
        items.push({ group: "contacts", id: `contact-${c.id}`, text: [c.name, c.email || c.phone].filter(Boolean).join(" · "),
          run: async () => {
            const page = await get(`/conversations?contact_id=${c.id}&limit=1`);
            if (page.items.length) openConversation(page.items[0].id);
            else window.location.hash = "contacts";
          } });
      }
    }
  }
  if (seq !== palette.seq) return;
  palette.items = items;
  palette.active = 0;
  draw();
}

function draw() {
  const groups = ["actions", "conversations", "contacts"];
  const nodes = [];
  let n = 0;
  for (const g of groups) {
    const mine = palette.items.filter((i) => i.group === g);
    if (!mine.length) continue;
    nodes.push(h("li", { class: "palette__group", attrs: { role: "presentation" }, text: t(`pal.group.${g}`) }));
    for (const item of mine) {
      const index = n++;
      nodes.push(h("li", { class: ["palette__item", index === palette.active ? "palette__item--active" : ""],
        attrs: { role: "option", id: `pal-${index}`, "aria-selected": String(index === palette.active) },
        dataset: { group: g, index, itemId: item.id }, text: item.text,
        on: { mousedown: (e) => { e.preventDefault(); run(index); } } }));
    }
  }
  if (!n) nodes.push(h("li", { class: "palette__none", text: t("pal.none") }));
  palette.list.replaceChildren(...nodes);
  palette.input.setAttribute("aria-activedescendant", n ? `pal-${palette.active}` : "");
}

function run(index) {
  const ordered = ["actions", "conversations", "contacts"].flatMap((g) => palette.items.filter((i) => i.group === g));
  const item = ordered[index];
  if (!item) return;
  palette.dialog.close();
  item.run();
}

function openPalette() {
  if (palette.dialog) {
    palette.input.focus();
    return;
  }
  palette.input = h("input", { class: "palette__input", attrs: { id: "palette-input", type: "search",
    role: "combobox", "aria-expanded": "true", "aria-controls": "palette-list", "aria-label": t("pal.label"),
    placeholder: t("pal.placeholder"), autocomplete: "off", maxlength: 200 } });
  palette.list = h("ul", { class: "palette__list", attrs: { id: "palette-list", role: "listbox" } });
  palette.dialog = h("dialog", { class: "kdialog palette", attrs: { id: "palette", "aria-label": t("pal.label") } },
    palette.input, palette.list);
  palette.input.addEventListener("input", () => {
    if (palette.timer !== null) window.clearTimeout(palette.timer);
    palette.timer = window.setTimeout(search, DELAY_MS);
  });
  palette.input.addEventListener("keydown", (e) => {
    const count = palette.list.querySelectorAll(".palette__item").length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!count) return;
      palette.active = (palette.active + (e.key === "ArrowDown" ? 1 : count - 1)) % count;
      draw();
    } else if (e.key === "Enter") {
      e.preventDefault();
      run(palette.active);
    }
  });
  palette.dialog.addEventListener("close", () => {
    palette.dialog.remove();
    palette.dialog = null;
    palette.seq += 1;
  });
  document.body.append(palette.dialog);
  palette.dialog.showModal();
  palette.input.focus();
  search();
}

// ---- the keys ---------------------------------------------------------------------------------------------------

function onKey(e) {
  if (!inWorkspace() || e.defaultPrevented) return;
  const key = e.key;
  if ((e.ctrlKey || e.metaKey) && !e.altKey && (key === "k" || key === "K" || key === "л" || key === "Л")) {
    e.preventDefault();
    openPalette();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target) || document.querySelector("dialog[open]")) return;
  if (key === "?") {
    e.preventDefault();
    showHelp();
    return;
  }
  if (!inInbox()) return;
  // e.code: the same physical keys whatever the keyboard layout (Russian ЙЦУКЕН included).
  const code = e.code;
  const act = { KeyJ: () => step(1), KeyK: () => step(-1), KeyE: () => click("btn-resolve"),
    KeyA: () => click("btn-assign-me"), KeyR: () => { const box = document.getElementById("reply-text");
      if (visible(box)) box.focus(); } }[code];
  if (!act || e.shiftKey) return;
  e.preventDefault();
  act();
}

document.addEventListener("keydown", onKey);
