// The conversation list: views (mine, unassigned, all, a team, a queue), filters, unread badges, newest first.
// The live socket only says that something changed; the list is then re-read from the REST API (debounced),
// so what it shows is always what the server says, in the server's order.

import { get } from "../api.js";
import { h, show } from "../dom.js";
import { lang, t } from "../i18n.js";
import { avatar, channelIcon } from "../icons.js";
import { el, hooks, isSupervisor, state, statusBadge, timeEl } from "./state.js";

let request = 0;
let signature = "";
let timer = null;
let lastItems = [];

export function resetList() {
  signature = "";
  request += 1;
  if (timer !== null) window.clearTimeout(timer);
  timer = null;
  lastItems = [];
  el.list.replaceChildren();
}

/** Re-read the list soon; several events in a burst cost one request. */
export function scheduleList(delay = 120) {
  if (timer !== null) return;
  timer = window.setTimeout(() => { timer = null; refreshList(); }, delay);
}

function params() {
  const p = new URLSearchParams({ limit: "100" });
  const { view, filters } = state;
  if (view.startsWith("team:")) {
    p.set("view", "all");
    p.set("team_id", view.slice(5));
  } else if (view.startsWith("queue:")) {
    p.set("view", "all");
    p.set("queue_id", view.slice(6));
  } else {
    p.set("view", view);
  }
  if (filters.status) p.set("status", filters.status);
  if (filters.channel) p.set("channel_id", filters.channel);
  if (filters.label) p.set("label", filters.label.trim().toLowerCase());
  if (filters.q.trim()) p.set("q", filters.q.trim());
  return p;
}

export async function refreshList() {
  if (!state.me) return;
  const mine = ++request;
  let page;
  try {
    page = await get(`/conversations?${params()}`);
  } catch (err) {
    if (mine === request) hooks.failed(err);
    return;
  }
  if (mine !== request || !state.me) return;
  for (const c of page.items) state.unread.set(c.id, c.id === state.selectedId ? 0 : (c.unread || 0));
  renderList(page.items);
}

/** Draw the last list again (a typing indicator came or went). */
export function rerenderList() {
  renderList(lastItems);
}

function renderList(items) {
  lastItems = items;
  const sig = JSON.stringify([lang(), state.selectedId, state.channels.size, [...state.typing.keys()],
    items.map((c) => [c.id, c.status, c.contact_name, c.subject, c.last_message_at, c.assignee_id, c.priority,
      c.labels, state.unread.get(c.id), c.last_inbound_channel_id, c.last_message])]);
  if (sig !== signature) {
    signature = sig;
    el.list.replaceChildren(...items.map(listRow));
  }
  show(el.listEmpty, items.length === 0);
  markSelected();
}

function listRow(conv) {
  const name = conv.contact_name || t("contact.unnamed");
  const unread = state.unread.get(conv.id) || 0;
  const channel = state.channels.get(conv.last_inbound_channel_id);
  const typing = state.typing.get(conv.id);
  const row = h("button", {
    class: ["conv-row", unread ? "conv-row--unread" : ""],
    type: "button",
    dataset: { id: conv.id, unread },
    on: { click: () => hooks.openConversation(conv.id) },
  },
  h("span", { class: "conv-row__avatar" }, avatar(name),
    channel ? channelIcon(channel.type, channel.name) : null),
  h("span", { class: "conv-row__main" },
    h("span", { class: "conv-row__top" },
      h("span", { class: "conv-row__name", text: name }),
      timeEl(conv.last_message_at, "conv-row__time")),
    typing ? h("span", { class: "conv-row__subject conv-row__subject--typing", text: t("ws.typing", { name: typing.name }) })
      : preview(conv),
    h("span", { class: "conv-row__bottom" },
      statusBadge(conv.status),
      conv.priority && conv.priority !== "normal"
        ? h("span", { class: ["priority", `priority--${conv.priority}`], text: t(`priority.${conv.priority}`) })
        : null,
      ...(conv.labels || []).slice(0, 3).map((l) => h("span", { class: "label-chip", text: l })),
      h("span", { class: "conv-row__spacer" }),
      unread ? h("span", { class: "unread", attrs: { "aria-label": t("ws.unread", { n: unread }) },
        text: unread > 99 ? "99+" : String(unread) }) : null)));
  // No aria-label: the row's own text (name, time, the latest message, status, labels, unread count) is its
  // accessible name, so a screen reader hears the preview and voice control finds the name it sees.
  return h("li", { class: "conv-list__item" }, row);
}

/** The latest message (who wrote it when it was not the customer), else the subject. */
function preview(conv) {
  const last = conv.last_message;
  if (!last) return h("span", { class: "conv-row__subject", text: conv.subject });
  const who = last.direction === "internal" ? t("ws.preview.note") : (last.direction === "out" ? t("ws.preview.reply") : "");
  return h("span", { class: "conv-row__subject" }, who ? h("span", { class: "conv-row__who", text: who }) : null,
    last.text);
}

export function markSelected() {
  for (const row of el.list.querySelectorAll(".conv-row")) {
    const selected = Number(row.dataset.id) === state.selectedId;
    row.classList.toggle("conv-row--selected", selected);
    if (selected) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

/** Clear a row's unread badge at once (the server's mark follows). */
export function clearUnread(id) {
  state.unread.set(id, 0);
  const row = el.list.querySelector(`.conv-row[data-id="${id}"]`);
  if (!row) return;
  row.classList.remove("conv-row--unread");
  row.dataset.unread = "0";
  const badge = row.querySelector(".unread");
  if (badge) badge.remove();
}

export function selectView(view) {
  state.view = view;
  for (const tab of el.tabs) tab.setAttribute("aria-pressed", String(tab.dataset.view === view));
  el.teamView.value = view.includes(":") ? view : "";
  signature = "";
  refreshList();
}

/** The team and queue views, and the channel filter, from the directory. */
export function fillViewPickers() {
  const keep = el.teamView.value;
  const teams = [...state.teams.values()].filter((x) => isSupervisor() || (state.me.team_ids || []).includes(x.id));
  const teamIds = new Set(teams.map((x) => x.id));
  const queues = [...state.queues.values()].filter((q) => isSupervisor() || teamIds.has(q.team_id));
  el.teamView.replaceChildren(h("option", { value: "", text: t("ws.view.teamOrQueue") }),
    teams.length ? h("optgroup", { attrs: { label: t("ws.view.teams") } },
      teams.map((x) => h("option", { value: `team:${x.id}`, text: x.name }))) : null,
    queues.length ? h("optgroup", { attrs: { label: t("ws.view.queues") } },
      queues.map((q) => h("option", { value: `queue:${q.id}`, text: q.name }))) : null);
  el.teamView.value = keep;
  const channel = el.channelFilter.value;
  el.channelFilter.replaceChildren(h("option", { value: "", text: t("ws.filter.anyChannel") }),
    ...[...state.channels.values()].map((c) => h("option", { value: String(c.id), text: c.name })));
  el.channelFilter.value = channel;
}
