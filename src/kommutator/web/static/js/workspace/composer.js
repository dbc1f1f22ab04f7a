// The reply box: reply or private note, the channel to answer on (among the customer's identities), canned
// responses typed as /shortcut (with {contact.name} and friends filled in), and the agent's typing indicator.

import { post } from "../api.js";
import { h, show } from "../dom.js";
import { t } from "../i18n.js";
import { catchUp } from "./detail.js";
import { scheduleList } from "./list.js";
import { el, hooks, showBanner, hideBanner, state } from "./state.js";

const TYPING_REPEAT_MS = 2500;
const TYPING_IDLE_MS = 4000;
let sending = false;
let typingSent = 0;
let typingTimer = null;
let suggestions = [];
let active = 0;
let socket = null;

export function initComposer(live) {
  socket = live;
  el.composer.addEventListener("submit", onSend);
  el.replyText.addEventListener("keydown", onKey);
  el.replyText.addEventListener("input", onInput);
  el.replyText.addEventListener("blur", () => window.setTimeout(() => showSuggestions([]), 150));
  el.noteToggle.addEventListener("change", updateComposerMode);
}

export function updateComposerMode() {
  const note = el.noteToggle.checked;
  el.composer.classList.toggle("composer--note", note);
  el.replyText.dataset.i18nPlaceholder = note ? "composer.notePlaceholder" : "ws.composer.placeholder";
  el.replyText.placeholder = t(el.replyText.dataset.i18nPlaceholder);
  el.send.dataset.i18n = note ? "composer.addNote" : "composer.send";
  el.send.textContent = t(el.send.dataset.i18n);
  el.replyChannel.disabled = note;
  if (note) stopTyping();
}

/** The channels the reply can go through: those of a type the customer has an identity on. */
export function fillChannels() {
  const d = state.detail;
  if (!d) return;
  const types = new Set((d.contact.identities || []).map((i) => i.channel_type));
  const keep = el.replyChannel.value;
  const options = [...state.channels.values()].filter((c) => types.has(c.type) && c.enabled !== false);
  const latest = state.channels.get(d.last_inbound_channel_id);
  el.replyChannel.replaceChildren(
    h("option", { value: "", text: latest ? t("ws.reply.latest", { name: latest.name }) : t("ws.reply.default") }),
    ...options.map((c) => h("option", { value: String(c.id), text: c.name })));
  el.replyChannel.value = options.some((c) => String(c.id) === keep) ? keep : "";
  show(el.replyChannelBox, options.length > 1 || (options.length === 1 && !latest));
}

function fill(body) {
  const d = state.detail;
  const c = d ? d.contact : {};
  const values = { "contact.name": c.name || "", "contact.email": c.email || "", "contact.phone": c.phone || "",
    "agent.name": state.me ? state.me.name : "" };
  return body.replace(/\{(contact\.name|contact\.email|contact\.phone|agent\.name)\}/g, (_, k) => values[k]);
}

/** Put text into the reply box at the cursor (used by canned responses and the knowledge base). */
export function insertText(text, replaceAll = false) {
  const area = el.replyText;
  if (replaceAll) area.value = text;
  else {
    const start = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? area.value.length;
    const before = area.value.slice(0, start);
    const sep = before && !/\s$/.test(before) ? "\n\n" : "";
    area.value = before + sep + text + area.value.slice(end);
  }
  area.focus();
  area.selectionStart = area.selectionEnd = area.value.length;
}

function matches(word) {
  const q = word.toLowerCase();
  return state.canned.filter((c) => c.shortcut.startsWith(q) || (q.length > 1 && c.title.toLowerCase().includes(q)))
    .slice(0, 8);
}

function onInput() {
  const m = /^\/([\w-]*)$/.exec(el.replyText.value);
  showSuggestions(m ? matches(m[1]) : []);
  if (!el.noteToggle.checked && el.replyText.value.trim()) startTyping();
}

function showSuggestions(list) {
  suggestions = list;
  active = 0;
  el.cannedBox.replaceChildren(...list.map((c, i) => h("li", {
    class: ["canned-item", i === 0 ? "canned-item--active" : ""], dataset: { shortcut: c.shortcut },
    attrs: { role: "option", "aria-selected": String(i === 0) },
    on: { mousedown: (event) => { event.preventDefault(); pick(c); } },
  }, h("span", { class: "canned-item__shortcut", text: `/${c.shortcut}` }),
  h("span", { class: "canned-item__title", text: c.title }),
  h("span", { class: "canned-item__body", text: fill(c.body) }))));
  show(el.cannedBox, list.length > 0);
}

function pick(c) {
  insertText(fill(c.body), true);
  showSuggestions([]);
}

function onKey(event) {
  if (suggestions.length) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : suggestions.length - 1)) % suggestions.length;
      [...el.cannedBox.children].forEach((li, i) => {
        li.classList.toggle("canned-item--active", i === active);
        li.setAttribute("aria-selected", String(i === active));
      });
      return;
    }
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      pick(suggestions[active]);
      return;
    }
    if (event.key === "Escape") {
      showSuggestions([]);
      return;
    }
  }
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    el.composer.requestSubmit();
  }
}

function startTyping() {
  const id = state.selectedId;
  if (id === null || !socket) return;
  if (Date.now() - typingSent > TYPING_REPEAT_MS) {
    socket.send({ type: "typing", conversation_id: id, typing: true });
    typingSent = Date.now();
  }
  if (typingTimer !== null) window.clearTimeout(typingTimer);
  typingTimer = window.setTimeout(stopTyping, TYPING_IDLE_MS);
}

export function stopTyping() {
  if (typingTimer !== null) window.clearTimeout(typingTimer);
  typingTimer = null;
  if (typingSent && state.selectedId !== null && socket) {
    socket.send({ type: "typing", conversation_id: state.selectedId, typing: false });
  }
  typingSent = 0;
}

async function onSend(event) {
  event.preventDefault();
  const id = state.selectedId;
  let text = el.replyText.value.trim();
  if (id === null || sending) return;
  const exact = /^\/([\w-]+)$/.exec(text);
  const canned = exact && state.canned.find((c) => c.shortcut === exact[1].toLowerCase());
  if (canned) { // "/greet" and Send: the canned text is put in for a look before it goes
    pick(canned);
    return;
  }
  if (!text) {
    showBanner(t("composer.empty"), "info");
    el.replyText.focus();
    return;
  }
  const note = el.noteToggle.checked;
  const body = { text, kind: note ? "note" : "text" };
  if (!note && el.replyChannel.value) body.channel_id = Number(el.replyChannel.value);
  sending = true;
  el.send.disabled = true;
  stopTyping();
  let sent = false;
  try {
    const message = await post(`/conversations/${id}/messages`, body);
    hooks.replySent(id, message);
    if (state.selectedId === id) el.replyText.value = "";
    text = "";
    state.drafts.delete(id);
    hideBanner();
    sent = true;
  } catch (err) {
    hooks.failed(err);
  } finally {
    // Free as soon as the message is stored: the next message typed during the refresh below is sent, not
    // silently dropped (the refresh can take a while on a busy server).
    sending = false;
    el.send.disabled = false;
    el.replyText.focus();
  }
  if (!sent) return;
  try {
    await Promise.all([catchUp(), hooks.refreshDetail()]);
  } catch (err) {
    hooks.failed(err);
  }
  scheduleList(0);
}
