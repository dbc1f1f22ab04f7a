// Reply suggestions above the composer: up to three, each with its source and why it is suggested (the words
// that matched). A click or Alt+1…3 puts one into the reply box for editing. They are fetched when a
// conversation opens and again when a new customer message arrives; what the agent does with them (shown,
// inserted, sent as inserted or edited) goes back to the server, which ranks by it.

import "../texts/assist.js";
import { ApiError, get, post } from "../api.js";
import { h, show } from "../dom.js";
import { t } from "../i18n.js";
import { insertText } from "./composer.js";
import { el, hooks, state } from "./state.js";

let items = [];
let shownFor = ""; // "<conversation>:<newest customer message>" the list was fetched for
let request = 0;
const inserted = new Map(); // conversation id -> {key, text} put into the reply box

export function initSuggestions() {
  document.addEventListener("keydown", onKey);
  hooks.timelineChanged = refreshSuggestions;
  hooks.replySent = replySent;
}

function newestCustomerMessage() {
  let newest = 0;
  for (const m of state.messages.values()) if (m.direction === "in" && m.id > newest) newest = m.id;
  return newest;
}

/** Fetch suggestions when the open conversation or its newest customer message changed since the last fetch. */
export async function refreshSuggestions() {
  const id = state.selectedId;
  if (id === null || !state.detail) {
    render([]);
    shownFor = "";
    return;
  }
  const marker = `${id}:${newestCustomerMessage()}`;
  if (marker === shownFor) return;
  shownFor = marker;
  const mine = ++request;
  if (el.suggestions.dataset.conversationId !== String(id)) render([]); // another conversation's: gone at once
  let got;
  try {
    got = await get(`/conversations/${id}/suggestions`);
  } catch (err) {
    if (mine !== request) return;
    render([]);
    if (!(err instanceof ApiError && err.status === 404)) hooks.failed(err);
    return;
  }
  if (mine !== request || state.selectedId !== id) return;
  el.suggestions.dataset.conversationId = String(id);
  render(got.items);
  if (got.items.length) {
    post(`/conversations/${id}/suggestions/feedback`, { action: "shown", keys: got.items.map((s) => s.key) })
      .catch(() => {});
  }
}

function reasonParts(s) {
  const parts = [];
  if (s.matched.length) {
    parts.push(h("span", { class: "suggestion__matched", dataset: { i18n: "assist.matched",
      i18nArgs: JSON.stringify({ words: s.matched.join(", ") }) }, text: t("assist.matched", { words: s.matched.join(", ") }) }));
  } else {
    parts.push(h("span", { class: "suggestion__matched", dataset: { i18n: "assist.similar" }, text: t("assist.similar") }));
  }
  if (s.source === "reply" && s.times_sent > 1) {
    parts.push(h("span", { class: "suggestion__count", dataset: { i18n: "assist.timesSent",
      i18nArgs: JSON.stringify({ n: s.times_sent }) }, text: t("assist.timesSent", { n: s.times_sent }) }));
  }
  return parts;
}

function render(list) {
  items = list;
  el.suggestionList.replaceChildren(...list.map((s, i) => {
    const n = i + 1;
    const label = t("assist.insert", { n, text: s.text.slice(0, 80) });
    return h("li", { class: "suggestion-row" }, h("button", {
      class: "suggestion", type: "button",
      dataset: { key: s.key, source: s.source, n },
      // Named by its own text (source, title, reply, reason), so voice control finds what it shows.
      attrs: { "aria-keyshortcuts": `Alt+${n}`, title: label },
      on: { click: () => use(i) },
    },
    h("kbd", { class: "suggestion__n", attrs: { "aria-hidden": "true" }, text: `Alt+${n}` }),
    h("span", { class: ["suggestion__source", `suggestion__source--${s.source}`],
      dataset: { i18n: `assist.source.${s.source}` }, text: t(`assist.source.${s.source}`) }),
    s.title ? h("span", { class: "suggestion__title", text: s.title }) : null,
    h("span", { class: "suggestion__text", text: s.text }),
    h("span", { class: "suggestion__reason" }, ...reasonParts(s))));
  }));
  show(el.suggestions, list.length > 0);
}

function use(index) {
  const s = items[index];
  const id = state.selectedId;
  if (!s || id === null) return;
  insertText(s.text, !el.replyText.value.trim());
  inserted.set(id, { key: s.key, text: s.text });
  post(`/conversations/${id}/suggestions/feedback`, { action: "inserted", key: s.key }).catch(() => {});
}

function onKey(event) {
  if (!event.altKey || event.ctrlKey || event.metaKey || state.selectedId === null || state.section !== "inbox"
    || el.suggestions.hidden) return;
  const digit = /^Digit([1-3])$/.exec(event.code || "");
  if (!digit) return;
  const index = Number(digit[1]) - 1;
  if (index >= items.length) return;
  event.preventDefault();
  use(index);
}

/** The agent sent a reply; if a suggestion was inserted into it, say whether it went out as inserted. */
function replySent(conversationId, message) {
  const used = inserted.get(conversationId);
  if (!used || !message || message.kind === "note") return;
  inserted.delete(conversationId);
  post(`/conversations/${conversationId}/suggestions/feedback`,
    { action: "sent", key: used.key, message_id: message.id, inserted_text: used.text }).catch(() => {});
}
