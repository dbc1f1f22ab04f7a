// One conversation: its header and actions, the timeline (every message and event, each with its channel),
// the handover note, the visitor's typing. Messages live in state.messages by id: the first load, every
// catch-up (messages?after_id=) and every reload merge into it, so a message is shown once whatever arrives twice.

import { ApiError, get, post } from "../api.js";
import { h, show } from "../dom.js";
import { has, lang, t } from "../i18n.js";
import "../texts/timeline.js";
import { avatar, channelIcon } from "../icons.js";
import { showContact } from "../contact.js";
import { clearUnread, markSelected, rerenderList } from "./list.js";
import { el, hideBannerOf, hooks, state, statusBadge, timeEl, userName } from "./state.js";

const MESSAGE_LIMIT = 200;
const REOPENABLE = ["resolved", "waiting", "snoozed"];
const TYPING_MS = 6000;
let timelineSignature = "";
let catchingUp = null;
// Whether the timeline follows its newest message. It is decided by the agent's scrolling, not measured at each
// render: the handover note and the suggestions appear after the timeline is drawn and shrink it, which would
// otherwise leave the newest messages below the view.
let followNewest = true;
const NEAR_BOTTOM_PX = 60;

function scrollToNewest() {
  el.timeline.scrollTop = el.timeline.scrollHeight;
}

/** Keep the newest message in view while the timeline's box changes size (note, suggestions, window). */
export function initTimeline() {
  const box = el.timeline;
  box.addEventListener("scroll", () => {
    followNewest = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
  }, { passive: true });
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(() => { if (followNewest) scrollToNewest(); }).observe(box);
  }
}

export function resetDetail() {
  state.selectedId = null;
  state.detail = null;
  state.messages = new Map();
  state.lastMessageId = 0;
  timelineSignature = "";
  followNewest = true;
  el.timeline.replaceChildren();
}

export async function openConversation(id) {
  if (state.selectedId !== null) state.drafts.set(state.selectedId, el.replyText.value);
  resetDetail();
  hideBannerOf(id);
  state.selectedId = id;
  el.replyText.value = state.drafts.get(id) || "";
  el.timeline.replaceChildren(h("li", { class: "timeline__info", text: t("conv.loading") }));
  el.contactBody.replaceChildren();
  el.convTitle.textContent = "";
  el.convMeta.replaceChildren();
  show(el.placeholder, false);
  show(el.convView);
  markSelected();
  clearUnread(id);
  await refreshDetail();
}

function merge(messages) {
  for (const m of messages) {
    state.messages.set(m.id, m);
    if (m.id > state.lastMessageId) state.lastMessageId = m.id;
  }
}

/** Read the conversation (header, contact, latest messages); merge, never replace, what is already shown. */
export async function refreshDetail() {
  const id = state.selectedId;
  if (id === null) return;
  let detail;
  try {
    detail = await get(`/conversations/${id}?limit=${MESSAGE_LIMIT}`);
  } catch (err) {
    if (state.selectedId !== id) return;
    if (err instanceof ApiError && err.status === 404) {
      closeConversation("conv.gone");
      return;
    }
    hooks.failed(err);
    return;
  }
  if (state.selectedId !== id || !state.me) return;
  const { messages, ...rest } = detail;
  state.detail = rest;
  merge(messages);
  renderDetail();
  markRead();
}

/** Fetch only what came after the newest message shown (after a live event or a reconnect). */
export async function catchUp() {
  const id = state.selectedId;
  if (id === null || !state.detail) return;
  if (catchingUp) {
    catchingUp.again = true;
    return;
  }
  catchingUp = { again: false };
  try {
    for (;;) {
      const page = await get(`/conversations/${id}/messages?after_id=${state.lastMessageId}&limit=100`);
      if (state.selectedId !== id) return;
      merge(page.items);
      if (page.items.length < 100) break;
    }
    renderTimeline();
    markRead();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) hooks.failed(err);
  } finally {
    const again = catchingUp && catchingUp.again;
    catchingUp = null;
    if (again) catchUp();
  }
}

/** The agent is looking at it: customer messages up to the newest are read (for this agent only). */
export function markRead() {
  const id = state.selectedId;
  if (id === null || document.hidden || state.section !== "inbox" || !state.lastMessageId) return;
  clearUnread(id);
  post(`/conversations/${id}/read`, { message_id: state.lastMessageId }).catch(() => {});
}

export function closeConversation(messageKey = "conv.pick") {
  resetDetail();
  show(el.convView, false);
  el.placeholder.dataset.i18n = messageKey;
  el.placeholder.textContent = t(messageKey);
  show(el.placeholder);
  markSelected();
}

export function renderDetail() {
  const d = state.detail;
  if (!d) return;
  const contactName = d.contact.name || d.contact_name || t("contact.unnamed");
  el.convTitle.textContent = contactName;
  el.convAvatar.replaceChildren(avatar(contactName, "avatar--lg"));
  el.convView.dataset.status = d.status;
  el.convView.dataset.conversationId = d.id;
  const meta = [statusBadge(d.status),
    h("span", { class: "conv__assignee",
      text: d.assignee_id ? t("conv.assignee", { name: userName(d.assignee_id) }) : t("conv.unassigned") })];
  if (d.team_id && state.teams.get(d.team_id)) {
    meta.push(h("span", { class: "conv__team", text: t("ws.team", { name: state.teams.get(d.team_id).name }) }));
  }
  if (d.priority && d.priority !== "normal") {
    meta.push(h("span", { class: ["priority", `priority--${d.priority}`],
      text: t("conv.priority", { priority: has(`priority.${d.priority}`) ? t(`priority.${d.priority}`) : d.priority }) }));
  }
  if (d.status === "snoozed" && d.snoozed_until) {
    meta.push(h("span", { class: "conv__snoozed", text: t("ws.snoozedUntil") }, " ", timeEl(d.snoozed_until, "")));
  }
  el.convMeta.replaceChildren(...meta);
  el.labelsBox.replaceChildren(...(d.labels || []).map((l) => h("span", { class: "label-chip", text: l })));
  show(el.resolve, d.status !== "resolved");
  show(el.reopen, REOPENABLE.includes(d.status));
  show(el.snooze, d.status !== "resolved");
  show(el.assignMe, !state.me || d.assignee_id !== state.me.id);
  renderTimeline();
  showContact(d.contact, d.id, d.status);
  hooks.detailChanged();
}

function messageKind(m) {
  if (m.kind === "note" || m.direction === "internal") return "note";
  if (m.direction === "in") return "customer";
  if (m.sender_type === "agent") return "agent";
  if (m.sender_type === "bot") return "bot";
  return "system";
}

function channelBadge(id) {
  if (id === null || id === undefined) {
    return h("span", { class: "msg__channel", dataset: { channelId: "" }, text: t("msg.noChannel") });
  }
  const channel = state.channels.get(id);
  return h("span", { class: "msg__channel", dataset: { channelId: id } },
    channel ? channelIcon(channel.type) : null,
    channel ? t("msg.channelNamed", { id, name: channel.name }) : t("msg.channel", { id }));
}

function senderText(m, kind, contactName) {
  if (kind === "customer") return contactName;
  if (kind === "bot") return t("msg.bot");
  if (kind === "system") return t("msg.system");
  let who = m.sender_user_id && state.me && m.sender_user_id === state.me.id
    ? t("msg.you") : (m.sender_user_id ? userName(m.sender_user_id) : t("msg.agent"));
  if (!m.sender_user_id && (m.sender_type === "bot" || m.sender_type === "system")) who = t(`msg.${m.sender_type}`);
  return kind === "note" ? `${t("msg.note")} · ${who}` : who;
}

function handoverText(m) {
  const ho = m.payload && m.payload.handover;
  if (!ho) return "";
  const to = ho.to_assignee_id ? userName(ho.to_assignee_id)
    : (ho.to_team_id && state.teams.get(ho.to_team_id) ? state.teams.get(ho.to_team_id).name : t("ws.theQueue"));
  return t("ws.handover.title", { from: userName(m.sender_user_id), to });
}

function messageItem(m, contactName) {
  const kind = messageKind(m);
  const handover = handoverText(m);
  const meta = h("div", { class: "msg__meta" },
    h("span", { class: "msg__sender", text: senderText(m, kind, contactName) }),
    channelBadge(m.channel_id),
    timeEl(m.created_at, "msg__time"));
  if (m.direction === "out" && has(`msg.status.${m.status}`)) {
    meta.append(h("span", { class: ["msg__status", `msg__status--${m.status}`],
      attrs: { title: m.status_reason || null }, text: t(`msg.status.${m.status}`) }));
  }
  const files = (m.attachments || []).length
    ? h("ul", { class: "msg__attachments", attrs: { "aria-label": t("msg.attachments") } },
      m.attachments.map((a) => h("li", { text: `${a.filename} (${a.content_type}, ${a.size} B)` })))
    : null;
  return h("li", { class: ["msg", `msg--${kind}`, handover ? "msg--handover" : ""], dataset: { messageId: m.id, kind } },
    handover ? h("p", { class: "msg__handover", text: handover }) : null,
    meta, h("div", { class: "msg__text", text: m.text }), files, deliveryReason(m));
}

function deliveryReason(m) {
  if (m.direction !== "out" || !m.status_reason) return null;
  const failed = m.status === "failed";
  if (!failed && m.status !== "queued") return null;
  return h("p", { class: ["msg__reason", failed ? "msg__reason--failed" : "msg__reason--retrying"],
    attrs: failed ? { role: "note" } : {} },
  h("span", { class: "msg__reason-label", text: t(failed ? "msg.reason.failed" : "msg.reason.retrying") }), " ",
  m.status_reason);
}

/** Why an event happened, in the reader's language: the server's code and values through texts/timeline.js;
 * the server's English sentence for codes this screen does not know (and rows older than codes). */
export function reasonText(tr) {
  const code = tr.reason_code || "";
  const p = { ...(tr.reason_params || {}) };
  let key = `reason.${code}`;
  if (code === "accept_timeout" && p.set_away) key = "reason.accept_timeout_away";
  if (code === "bot_handoff" && p.queue) key = "reason.bot_handoff_queue";
  if (!code || !has(key)) return tr.reason;
  if (p.agent_id && !p.agent) p.agent = userName(p.agent_id);
  if (p.strategy) p.strategy = has(`strategy.${p.strategy}`) ? t(`strategy.${p.strategy}`) : p.strategy;
  if (p.channel_type) p.channel = has(`channel.${p.channel_type}`) ? t(`channel.${p.channel_type}`) : p.channel_type;
  let text = t(key, p);
  if (p.note) text += `: ${p.note}`;
  else if (p.why && code !== "bot_resolved") text += `: ${p.why}`;
  return text;
}

function eventItem(tr) {
  const who = tr.actor_user_id ? userName(tr.actor_user_id) : t("msg.system");
  return h("li", { class: "timeline__event", dataset: { transitionId: tr.id } },
    h("span", { class: "timeline__event-text",
      text: t("ws.event", { status: has(`status.${tr.to_status}`) ? t(`status.${tr.to_status}`) : tr.to_status, who }) }),
    reasonText(tr) ? h("span", { class: "timeline__event-reason", text: reasonText(tr) }) : null,
    timeEl(tr.at, "timeline__event-time"));
}

export function renderTimeline() {
  const d = state.detail;
  if (!d) return;
  const messages = [...state.messages.values()].sort((a, b) => a.id - b.id);
  const sig = JSON.stringify([lang(), state.users.size, state.channels.size, state.teams.size, d.contact.name,
    messages.map((m) => [m.id, m.status, m.status_reason]), (d.transitions || []).length]);
  if (sig === timelineSignature) return;
  timelineSignature = sig;
  const box = el.timeline;
  const contactName = d.contact.name || d.contact_name || t("msg.customer");
  const entries = [...messages.map((m) => ({ at: m.created_at, order: 1, node: () => messageItem(m, contactName) })),
    ...(d.transitions || []).map((tr) => ({ at: tr.at, order: 0, node: () => eventItem(tr) }))];
  entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.order - b.order));
  const items = entries.map((e) => e.node());
  if (d.more_messages_before) items.unshift(h("li", { class: "timeline__info", text: t("conv.olderHidden") }));
  if (!messages.length) items.push(h("li", { class: "timeline__info", text: t("conv.noMessages") }));
  box.replaceChildren(...items);
  renderHandover(messages);
  hooks.timelineChanged();
  if (followNewest) scrollToNewest(); // after the note and suggestions took their room
}

/** The newest handover note to me (or my team), or the bot's hand-off summary (a pinned note), stands above
 * the timeline until I reply (the summary: until any agent replies). */
function renderHandover(messages) {
  const mine = state.me ? state.me.id : null;
  let note = null;
  for (const m of messages) {
    const ho = m.payload && m.payload.handover;
    if (ho && (ho.to_assignee_id === mine || (!ho.to_assignee_id && (state.me.team_ids || []).includes(ho.to_team_id)))) {
      note = m;
    } else if (m.payload && m.payload.pinned && m.sender_type === "bot") {
      note = m;
    } else if (note && m.direction === "out" && m.sender_type === "agent"
      && (m.sender_user_id === mine || !note.payload.handover)) {
      note = null; // answered since: the note has done its job
    }
  }
  show(el.handover, Boolean(note));
  if (!note) return;
  el.handoverTitle.textContent = handoverText(note) || t("ws.botSummary.title");
  el.handoverText.textContent = botSummaryText(note) || note.text;
}

/** The bot's hand-off summary in the reader's language, from what the server recorded (payload.bot). */
export function botSummaryText(note) {
  const bot = note.payload && note.payload.bot;
  if (!bot || bot.event !== "handoff" || !Array.isArray(bot.asked)) return "";
  const lines = [];
  if (bot.asked.length) lines.push(t("ws.botSummary.asked", { text: bot.asked.map((a) => `«${a}»`).join(" / ") }));
  if ((bot.chose || []).length) lines.push(t("ws.botSummary.chose", { text: bot.chose.join(" → ") }));
  const vars = Object.entries(bot.vars || {}).filter(([k]) => !k.startsWith("http_"));
  if (vars.length) lines.push(t("ws.botSummary.collected", { text: vars.map(([k, v]) => `${k} = ${v}`).join(", ") }));
  if (bot.reason) lines.push(t("ws.botSummary.why", { text: bot.reason }));
  return lines.join("\n");
}

/** Someone is typing: the visitor (shown here) or a colleague (shown in the list too). */
export function showTyping(event) {
  if (event.who === "agent" && state.me && event.user_id === state.me.id) return;
  const cid = event.conversation_id;
  if (!event.typing) state.typing.delete(cid);
  else if (event.who === undefined) return;
  else {
    const name = event.who === "contact"
      ? ((state.detail && state.detail.id === cid && state.detail.contact.name) || t("msg.customer"))
      : (event.name || userName(event.user_id));
    state.typing.set(cid, { name, who: event.who, until: Date.now() + TYPING_MS });
    window.setTimeout(expireTyping, TYPING_MS + 50);
  }
  renderTyping();
}

function expireTyping() {
  const at = Date.now();
  for (const [cid, v] of state.typing) if (v.until <= at) state.typing.delete(cid);
  renderTyping();
}

function renderTyping() {
  rerenderList(); // the list's row says "typing…" too
  const v = state.selectedId !== null ? state.typing.get(state.selectedId) : null;
  show(el.typing, Boolean(v));
  el.typing.textContent = v ? t(v.who === "contact" ? "ws.typing" : "ws.agentTyping", { name: v.name }) : "";
}
