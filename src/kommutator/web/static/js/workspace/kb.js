// The knowledge base beside the conversation: search articles (Russian and English word forms) and put an
// answer into the reply box.

import { get } from "../api.js";
import { h, show } from "../dom.js";
import { t } from "../i18n.js";
import { insertText } from "./composer.js";
import { el, hooks, state } from "./state.js";

const DELAY_MS = 250;
let timer = null;
let request = 0;

export function initKb() {
  el.kbSearch.addEventListener("input", () => {
    if (timer !== null) window.clearTimeout(timer);
    timer = window.setTimeout(search, DELAY_MS);
  });
  el.kbForm.addEventListener("submit", (event) => { event.preventDefault(); search(); });
}

/** Suggest articles for the customer's latest message when the panel opens with an empty search. */
export function kbOpened() {
  if (el.kbSearch.value.trim()) return;
  const last = [...state.messages.values()].filter((m) => m.direction === "in" && m.text).sort((a, b) => b.id - a.id)[0];
  if (last) {
    el.kbSearch.value = last.text.slice(0, 120);
    search();
  }
}

async function search() {
  const q = el.kbSearch.value.trim();
  const mine = ++request;
  if (!q) {
    el.kbResults.replaceChildren();
    show(el.kbEmpty, false);
    return;
  }
  let hits;
  try {
    hits = await get(`/knowledge/search?${new URLSearchParams({ q, limit: "8" })}`);
  } catch (err) {
    if (mine === request) hooks.failed(err);
    return;
  }
  if (mine !== request) return;
  el.kbResults.replaceChildren(...hits.map(hitItem));
  el.kbResults.dataset.query = q; // what these results answer (a test waits for its own search, not an earlier one)
  show(el.kbEmpty, hits.length === 0);
}

function hitItem(hit) {
  const body = h("div", { class: "kb-hit__body", hidden: true });
  const toggle = h("button", { class: "kb-hit__title", type: "button", text: hit.title,
    attrs: { "aria-expanded": "false" }, on: { click: async () => {
      const opening = body.hidden;
      body.hidden = !opening;
      toggle.setAttribute("aria-expanded", String(opening));
      if (opening && !body.dataset.loaded) {
        try {
          const article = await get(`/knowledge/articles/${hit.id}`);
          body.dataset.loaded = "1";
          body.replaceChildren(h("p", { class: "kb-hit__text", text: article.body_text || article.body }),
            h("button", { class: "btn btn--small btn--primary kb-insert", type: "button", text: t("ws.kb.insert"),
              on: { click: () => insertText(article.body_text || article.body) } }));
        } catch (err) {
          hooks.failed(err);
        }
      }
    } } });
  return h("li", { class: "kb-hit", dataset: { articleId: hit.id } }, toggle,
    h("p", { class: "kb-hit__snippet", text: hit.snippet || "" }),
    h("span", { class: "kb-hit__lang", text: hit.language || "" }), body);
}
