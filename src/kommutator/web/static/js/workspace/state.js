// What the workspace's modules share: the session, the directory (users, teams, queues, channels), the open
// conversation and the page's elements. Each module reads and writes here; main.js wires the events.

import { ApiError } from "../api.js";
import { $, h, show } from "../dom.js";
import { fullTime, has, shortTime, t } from "../i18n.js";

export const state = {
  me: null,
  section: "inbox",
  view: "mine", // mine | unassigned | all | team:<id> | queue:<id>
  filters: { status: "open", channel: "", label: "", q: "" },
  selectedId: null,
  detail: null, // the open conversation (without messages)
  messages: new Map(), // id -> message of the open conversation: catch-up merges here, so nothing doubles
  lastMessageId: 0,
  users: new Map(),
  teams: new Map(),
  queues: new Map(),
  channels: new Map(),
  canned: [],
  drafts: new Map(),
  unread: new Map(),
  typing: new Map(), // conversation id -> {name, who, until}
  connection: "offline",
};

export const el = {};

export function bindElements(ids) {
  for (const [key, id] of Object.entries(ids)) el[key] = $(`#${id}`);
}

export const hooks = { failed: () => {}, refreshList: () => {}, refreshDetail: () => {}, openConversation: () => {},
  detailChanged: () => {}, timelineChanged: () => {}, replySent: () => {} };

export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.network");
    return err.detail || t("error.generic", { status: err.status });
  }
  return String((err && err.message) || err);
}

/** A message above the workspace; with a conversation id it is about that conversation and goes when another
 * one is opened ("Conversation resolved." must not stand over the next customer). */
export function showBanner(text, kind = "error", conversationId = null) {
  el.bannerText.textContent = text;
  el.banner.className = `banner banner--${kind}`;
  el.banner.dataset.conversationId = conversationId === null ? "" : String(conversationId);
  show(el.banner);
}

export function hideBanner() {
  show(el.banner, false);
  el.bannerText.textContent = "";
  el.banner.dataset.conversationId = "";
}

/** Opening another conversation: a banner about the previous one goes. */
export function hideBannerOf(otherThan) {
  const about = el.banner.dataset.conversationId;
  if (about && about !== String(otherThan)) hideBanner();
}

export function isSupervisor() {
  return Boolean(state.me && (state.me.role === "admin" || state.me.role === "supervisor"));
}

export function userName(id) {
  if (id === null || id === undefined) return "";
  if (state.me && id === state.me.id) return state.me.name;
  const user = state.users.get(id);
  return user ? user.name : `#${id}`;
}

export function channelType(id) {
  const c = state.channels.get(id);
  return c ? c.type : "";
}

export function statusBadge(status) {
  return h("span", {
    class: ["badge", `badge--${has(`status.${status}`) ? status : "other"}`],
    dataset: { status },
    text: has(`status.${status}`) ? t(`status.${status}`) : status,
  });
}

export function timeEl(iso, cls) {
  return h("time", { class: cls, attrs: { datetime: iso, title: fullTime(iso) }, text: shortTime(iso) });
}
