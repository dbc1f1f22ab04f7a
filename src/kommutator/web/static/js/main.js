// The agent workspace: log in, list conversations, read and answer one; administrators also reach the
// administration screens (admin.js) from the top bar. Plain ES modules, no build step.
// The list and the open conversation are refreshed by polling; live WebSocket updates come later.
// Every customer-supplied string is put into the page with textContent / text nodes (see dom.js).

import { ADMIN_SECTIONS, adminLangChanged, initAdmin, refreshAdmin, resetAdmin, showAdmin } from "./admin.js";
import { ApiError, get, patch, post, setCsrfToken } from "./api.js";
import { initContact, resetContact, showContact } from "./contact.js";
import { $, h, show } from "./dom.js";
import { fullTime, has, initialLang, lang, LANGUAGES, setLang, shortTime, t } from "./i18n.js";

const POLL_MS = 4000;
const MESSAGE_LIMIT = 200;
const KNOWN_STATUSES = ["bot", "queued", "assigned", "waiting", "snoozed", "resolved"];
const REOPENABLE = ["resolved", "waiting", "snoozed"];

const state = {
  me: null,
  section: "inbox", // "inbox", or an administration screen (administrators only)
  view: "mine",
  status: "open",
  selectedId: null,
  detail: null,
  listSignature: "",
  timelineSignature: "",
  listRequest: 0,
  users: new Map(),
  channels: new Map(),
  drafts: new Map(),
  pollTimer: null,
  polling: false,
  sending: false,
};

const el = {};

function bindElements() {
  for (const [key, id] of Object.entries({
    boot: "boot", loginView: "login-view", loginForm: "login-form", loginEmail: "login-email",
    loginPassword: "login-password", loginError: "login-error", loginSubmit: "login-submit", loginLang: "login-lang",
    workspace: "workspace-view", meName: "me-name", langSelect: "lang-select", logout: "logout-button",
    banner: "banner", bannerText: "banner-text", bannerClose: "banner-close", statusFilter: "status-filter",
    list: "conversation-list", listEmpty: "list-empty", placeholder: "conv-placeholder", convView: "conv-view",
    convTitle: "conv-title", convMeta: "conv-meta", assignMe: "btn-assign-me", resolve: "btn-resolve",
    reopen: "btn-reopen", timeline: "timeline", contactBody: "contact-body", composer: "composer",
    replyText: "reply-text", noteToggle: "note-toggle", send: "send-button", nav: "main-nav", inbox: "inbox-view",
    admin: "admin-view",
  })) {
    el[key] = $(`#${id}`);
  }
  el.tabs = [...document.querySelectorAll(".tab[data-view]")];
  el.navLinks = [...document.querySelectorAll(".mainnav__link[data-section]")];
}

// ---- messages to the user ----------------------------------------------------------------------------

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.network");
    return err.detail || t("error.generic", { status: err.status });
  }
  return String((err && err.message) || err);
}

function showBanner(text, kind = "error") {
  el.bannerText.textContent = text;
  el.banner.className = `banner banner--${kind}`;
  show(el.banner);
}

function hideBanner() {
  show(el.banner, false);
  el.bannerText.textContent = "";
}

/** Handle a failed call: a lost session goes back to the login form, anything else shows in the banner. */
function failed(err) {
  if (err instanceof ApiError && err.status === 401) {
    if (state.me) toLogin(t("error.sessionExpired")); // else: a second call of the same poll; already there
    return;
  }
  showBanner(errorText(err));
}

// ---- language -------------------------------------------------------------------------------------------

function applyLang(next) {
  setLang(next);
  el.langSelect.value = lang();
  el.loginLang.value = lang();
  updateComposerMode();
  if (state.me) {
    state.listSignature = "";
    state.timelineSignature = "";
    refreshList();
    if (state.detail) renderDetail(state.detail);
    adminLangChanged();
  }
}

async function changeLang(next) {
  if (!LANGUAGES.includes(next)) return;
  applyLang(next);
  if (!state.me || state.me.locale === next) return;
  try {
    state.me = await patch(`/users/${state.me.id}`, { locale: next });
  } catch (err) {
    failed(err);
  }
}

// ---- login / logout -------------------------------------------------------------------------------------

function toLogin(message = "") {
  stopPolling();
  state.me = null;
  state.selectedId = null;
  state.detail = null;
  state.listSignature = "";
  state.timelineSignature = "";
  state.drafts.clear();
  state.users.clear();
  state.channels.clear();
  setCsrfToken("");
  el.list.replaceChildren();
  el.timeline.replaceChildren();
  resetContact();
  el.replyText.value = "";
  resetAdmin();
  show(el.nav, false);
  show(el.admin, false);
  show(el.inbox);
  state.section = "inbox";
  hideBanner();
  show(el.boot, false);
  show(el.workspace, false);
  show(el.loginView);
  el.loginError.textContent = message;
  show(el.loginError, Boolean(message));
  el.loginPassword.value = "";
  el.loginEmail.focus();
}

async function onLogin(event) {
  event.preventDefault();
  const email = el.loginEmail.value.trim();
  const password = el.loginPassword.value;
  if (!email || !password) {
    el.loginError.textContent = t("login.missing");
    show(el.loginError);
    return;
  }
  el.loginSubmit.disabled = true;
  el.loginSubmit.dataset.i18n = "login.busy";
  el.loginSubmit.textContent = t("login.busy");
  try {
    const me = await post("/auth/login", { email, password });
    el.loginPassword.value = "";
    show(el.loginError, false);
    enterWorkspace(me);
  } catch (err) {
    el.loginError.textContent = errorText(err);
    show(el.loginError);
  } finally {
    el.loginSubmit.disabled = false;
    el.loginSubmit.dataset.i18n = "login.submit";
    el.loginSubmit.textContent = t("login.submit");
  }
}

async function onLogout() {
  try {
    await post("/auth/logout");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      failed(err);
      return;
    }
  }
  toLogin();
}

function enterWorkspace(me) {
  applyLang(me.user.locale);
  state.me = me.user;
  setCsrfToken(me.csrf_token);
  el.meName.textContent = me.user.name;
  el.meName.title = me.user.email;
  hideBanner();
  show(el.boot, false);
  show(el.loginView, false);
  show(el.workspace);
  show(el.convView, false);
  show(el.placeholder);
  el.placeholder.dataset.i18n = "conv.pick";
  el.placeholder.textContent = t("conv.pick");
  show(el.nav, isAdmin());
  loadDirectory();
  route();
  startPolling();
}

// ---- sections: the inbox, and for administrators the administration screens (#channels, #queues) ----------

function isAdmin() {
  return Boolean(state.me && state.me.role === "admin");
}

/** Show the section the address names; anyone but an administrator always gets the inbox. */
function route() {
  if (!state.me) return;
  const wanted = window.location.hash.replace(/^#/, "");
  const section = isAdmin() && ADMIN_SECTIONS.includes(wanted) ? wanted : "inbox";
  state.section = section;
  for (const link of el.navLinks) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  show(el.inbox, section === "inbox");
  show(el.admin, section !== "inbox");
  if (section === "inbox") {
    state.listSignature = "";
    refreshList();
    if (state.selectedId !== null) refreshDetail();
  } else {
    showAdmin(section);
  }
}

/** Users and channels, to show names instead of ids; the workspace works without them. */
async function loadDirectory() {
  const [users, channels] = await Promise.allSettled([get("/users?limit=200"), get("/channels")]);
  if (users.status === "fulfilled") {
    for (const u of users.value.items) state.users.set(u.id, u);
  }
  if (channels.status === "fulfilled" && Array.isArray(channels.value)) {
    for (const c of channels.value) state.channels.set(c.id, c);
  }
  if (state.detail) {
    state.timelineSignature = "";
    renderDetail(state.detail);
  }
}

// ---- polling --------------------------------------------------------------------------------------------

function startPolling() {
  stopPolling();
  state.pollTimer = window.setInterval(poll, POLL_MS);
}

function stopPolling() {
  if (state.pollTimer !== null) window.clearInterval(state.pollTimer);
  state.pollTimer = null;
}

async function poll() {
  if (state.polling || document.hidden || !state.me) return;
  state.polling = true;
  try {
    if (state.section !== "inbox") await refreshAdmin();
    else await Promise.all([refreshList(), state.selectedId !== null ? refreshDetail() : null]);
  } finally {
    state.polling = false;
  }
}

// ---- the conversation list ------------------------------------------------------------------------------

async function refreshList() {
  if (!state.me) return;
  const request = ++state.listRequest;
  const params = new URLSearchParams({ view: state.view, status: state.status, limit: "100" });
  let page;
  try {
    page = await get(`/conversations?${params}`);
  } catch (err) {
    if (request === state.listRequest) failed(err);
    return;
  }
  if (request !== state.listRequest || !state.me) return; // a newer request (other tab or filter) won
  renderList(page.items);
}

function statusBadge(status) {
  const known = KNOWN_STATUSES.includes(status);
  return h("span", {
    class: ["badge", `badge--${known ? status : "other"}`],
    dataset: { status },
    text: has(`status.${status}`) ? t(`status.${status}`) : status,
  });
}

function timeEl(iso, cls) {
  return h("time", { class: cls, attrs: { datetime: iso, title: fullTime(iso) }, text: shortTime(iso) });
}

function renderList(items) {
  const signature = JSON.stringify([lang(), items.map((c) => [c.id, c.status, c.contact_name, c.subject,
    c.last_message_at, c.assignee_id, c.priority])]);
  if (signature !== state.listSignature) {
    state.listSignature = signature;
    el.list.replaceChildren(...items.map(listRow));
  }
  show(el.listEmpty, items.length === 0);
  markSelected();
}

function listRow(conv) {
  const name = conv.contact_name || t("contact.unnamed");
  const row = h("button", {
    class: "conv-row",
    type: "button",
    dataset: { id: conv.id },
    on: { click: () => openConversation(conv.id) },
  },
  h("span", { class: "conv-row__top" },
    h("span", { class: "conv-row__name", text: name }),
    statusBadge(conv.status)),
  h("span", { class: "conv-row__subject", text: conv.subject }),
  h("span", { class: "conv-row__bottom" },
    conv.priority && conv.priority !== "normal"
      ? h("span", { class: ["priority", `priority--${conv.priority}`], text: t(`priority.${conv.priority}`) })
      : null,
    timeEl(conv.last_message_at, "conv-row__time")));
  row.setAttribute("aria-label", `${name}, ${t(`status.${conv.status}`)}, ` +
    t("list.lastActivity", { time: shortTime(conv.last_message_at) }));
  return h("li", { class: "conv-list__item" }, row);
}

function markSelected() {
  for (const row of el.list.querySelectorAll(".conv-row")) {
    const selected = Number(row.dataset.id) === state.selectedId;
    row.classList.toggle("conv-row--selected", selected);
    if (selected) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

function selectView(view) {
  state.view = view;
  for (const tab of el.tabs) tab.setAttribute("aria-pressed", String(tab.dataset.view === view));
  state.listSignature = "";
  refreshList();
}

// ---- one conversation -----------------------------------------------------------------------------------

async function openConversation(id) {
  if (state.selectedId !== null) state.drafts.set(state.selectedId, el.replyText.value);
  state.selectedId = id;
  state.detail = null;
  state.timelineSignature = "";
  el.replyText.value = state.drafts.get(id) || "";
  el.timeline.replaceChildren(h("li", { class: "timeline__info", text: t("conv.loading") }));
  el.contactBody.replaceChildren();
  el.convTitle.textContent = "";
  el.convMeta.replaceChildren();
  show(el.placeholder, false);
  show(el.convView);
  markSelected();
  await refreshDetail();
}

async function refreshDetail() {
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
    failed(err);
    return;
  }
  if (state.selectedId !== id || !state.me) return;
  state.detail = detail;
  renderDetail(detail);
}

function closeConversation(messageKey = "conv.pick") {
  state.selectedId = null;
  state.detail = null;
  state.timelineSignature = "";
  show(el.convView, false);
  el.placeholder.dataset.i18n = messageKey;
  el.placeholder.textContent = t(messageKey);
  show(el.placeholder);
  markSelected();
}

function userName(id) {
  if (id === null || id === undefined) return "";
  if (state.me && id === state.me.id) return state.me.name;
  const user = state.users.get(id);
  return user ? user.name : `#${id}`;
}

function renderDetail(d) {
  const contactName = d.contact.name || d.contact_name || t("contact.unnamed");
  el.convTitle.textContent = contactName;
  el.convView.dataset.status = d.status;
  el.convView.dataset.conversationId = d.id;

  const meta = [statusBadge(d.status),
    h("span", { class: "conv__assignee",
      text: d.assignee_id ? t("conv.assignee", { name: userName(d.assignee_id) }) : t("conv.unassigned") })];
  if (d.priority && d.priority !== "normal") {
    meta.push(h("span", { class: ["priority", `priority--${d.priority}`],
      text: t("conv.priority", { priority: has(`priority.${d.priority}`) ? t(`priority.${d.priority}`) : d.priority }) }));
  }
  if (d.labels && d.labels.length) {
    meta.push(h("span", { class: "conv__labels", text: t("conv.labels", { labels: d.labels.join(", ") }) }));
  }
  el.convMeta.replaceChildren(...meta);

  show(el.resolve, d.status !== "resolved");
  show(el.reopen, REOPENABLE.includes(d.status));
  show(el.assignMe, !state.me || d.assignee_id !== state.me.id);

  renderTimeline(d);
  showContact(d.contact, d.id);
}

function messageKind(m) {
  if (m.kind === "note" || m.direction === "internal") return "note";
  if (m.direction === "in") return "customer";
  if (m.sender_type === "agent") return "agent";
  if (m.sender_type === "bot") return "bot";
  return "system";
}

function channelText(id) {
  if (id === null || id === undefined) return t("msg.noChannel");
  const channel = state.channels.get(id);
  return channel ? t("msg.channelNamed", { id, name: channel.name }) : t("msg.channel", { id });
}

function senderText(m, kind, contactName) {
  if (kind === "customer") return contactName;
  if (kind === "bot") return t("msg.bot");
  if (kind === "system") return t("msg.system");
  const who = m.sender_user_id && state.me && m.sender_user_id === state.me.id
    ? t("msg.you") : (m.sender_user_id ? userName(m.sender_user_id) : t("msg.agent"));
  return kind === "note" ? `${t("msg.note")} · ${who}` : who;
}

function messageItem(m, contactName) {
  const kind = messageKind(m);
  const meta = h("div", { class: "msg__meta" },
    h("span", { class: "msg__sender", text: senderText(m, kind, contactName) }),
    h("span", { class: "msg__channel", dataset: { channelId: m.channel_id ?? "" }, text: channelText(m.channel_id) }),
    timeEl(m.created_at, "msg__time"));
  if (m.direction === "out" && has(`msg.status.${m.status}`)) {
    meta.append(h("span", {
      class: ["msg__status", `msg__status--${m.status}`],
      attrs: { title: m.status_reason || null },
      text: t(`msg.status.${m.status}`),
    }));
  }
  const body = h("div", { class: "msg__text", text: m.text });
  const files = (m.attachments || []).length
    ? h("ul", { class: "msg__attachments", attrs: { "aria-label": t("msg.attachments") } },
      m.attachments.map((a) => h("li", { text: `${a.filename} (${a.content_type}, ${a.size} B)` })))
    : null;
  return h("li", { class: ["msg", `msg--${kind}`], dataset: { messageId: m.id, kind } }, meta, body, files,
    deliveryReason(m));
}

/** Why an outbound message failed, or why it is still being retried, written under it (not only a tooltip). */
function deliveryReason(m) {
  if (m.direction !== "out" || !m.status_reason) return null;
  if (m.status === "failed") {
    return h("p", { class: "msg__reason msg__reason--failed", attrs: { role: "note" } },
      h("span", { class: "msg__reason-label", text: t("msg.reason.failed") }), " ", m.status_reason);
  }
  if (m.status === "queued") {
    return h("p", { class: "msg__reason msg__reason--retrying" },
      h("span", { class: "msg__reason-label", text: t("msg.reason.retrying") }), " ", m.status_reason);
  }
  return null;
}

function renderTimeline(d) {
  const signature = JSON.stringify([lang(), state.users.size, state.channels.size,
    d.messages.map((m) => [m.id, m.status, m.status_reason]), d.contact.name]);
  if (signature === state.timelineSignature) return;
  state.timelineSignature = signature;
  const box = el.timeline;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const firstRender = !box.querySelector(".msg");
  const contactName = d.contact.name || d.contact_name || t("msg.customer");
  const items = d.messages.map((m) => messageItem(m, contactName));
  if (d.more_messages_before) items.unshift(h("li", { class: "timeline__info", text: t("conv.olderHidden") }));
  if (!d.messages.length) items.push(h("li", { class: "timeline__info", text: t("conv.noMessages") }));
  box.replaceChildren(...items);
  if (atBottom || firstRender) box.scrollTop = box.scrollHeight;
}

// ---- replying and acting --------------------------------------------------------------------------------

function updateComposerMode() {
  const note = el.noteToggle.checked;
  el.composer.classList.toggle("composer--note", note);
  el.replyText.dataset.i18nPlaceholder = note ? "composer.notePlaceholder" : "composer.placeholder";
  el.replyText.placeholder = t(el.replyText.dataset.i18nPlaceholder);
  el.send.dataset.i18n = note ? "composer.addNote" : "composer.send";
  el.send.textContent = t(el.send.dataset.i18n);
}

async function onSend(event) {
  event.preventDefault();
  const id = state.selectedId;
  const text = el.replyText.value.trim();
  if (id === null || state.sending) return;
  if (!text) {
    showBanner(t("composer.empty"), "info");
    el.replyText.focus();
    return;
  }
  state.sending = true;
  el.send.disabled = true;
  try {
    await post(`/conversations/${id}/messages`, { text, kind: el.noteToggle.checked ? "note" : "text" });
    if (state.selectedId === id) el.replyText.value = "";
    state.drafts.delete(id);
    hideBanner();
    await Promise.all([refreshDetail(), refreshList()]);
  } catch (err) {
    failed(err);
  } finally {
    state.sending = false;
    el.send.disabled = false;
    el.replyText.focus();
  }
}

async function act(button, path, body, doneKey) {
  const id = state.selectedId;
  if (id === null) return;
  button.disabled = true;
  try {
    await post(`/conversations/${id}/${path}`, body);
    showBanner(t(doneKey), "info");
    await Promise.all([refreshDetail(), refreshList()]);
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
}

// ---- start --------------------------------------------------------------------------------------------

function wire() {
  el.loginForm.addEventListener("submit", onLogin);
  el.loginLang.addEventListener("change", () => applyLang(el.loginLang.value));
  el.langSelect.addEventListener("change", () => changeLang(el.langSelect.value));
  el.logout.addEventListener("click", onLogout);
  el.bannerClose.addEventListener("click", hideBanner);
  window.addEventListener("hashchange", route);
  for (const tab of el.tabs) tab.addEventListener("click", () => selectView(tab.dataset.view));
  el.statusFilter.addEventListener("change", () => {
    state.status = el.statusFilter.value;
    state.listSignature = "";
    refreshList();
  });
  el.composer.addEventListener("submit", onSend);
  el.replyText.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      el.composer.requestSubmit();
    }
  });
  el.noteToggle.addEventListener("change", updateComposerMode);
  el.resolve.addEventListener("click", () => act(el.resolve, "status", { status: "resolved" }, "action.done.resolved"));
  el.reopen.addEventListener("click", () => act(el.reopen, "status", { status: "open" }, "action.done.reopened"));
  el.assignMe.addEventListener("click", () => act(el.assignMe, "assign", { assignee_id: state.me.id },
    "action.done.assigned"));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
}

async function boot() {
  bindElements();
  initAdmin({ root: el.admin, onError: failed, onChannelsChanged: loadDirectory });
  initContact({ root: el.contactBody, me: () => state.me, users: () => state.users, channels: () => state.channels,
    onError: failed, onChanged: () => Promise.all([refreshDetail(), refreshList()]), openConversation });
  applyLang(initialLang());
  wire();
  let me = null;
  try {
    me = await get("/auth/me");
  } catch (err) {
    toLogin(err instanceof ApiError && err.status === 401 ? "" : errorText(err));
    return;
  }
  if (!me.csrf_token) {
    // Only a cookie session has a CSRF token; without one the workspace could not write anything.
    toLogin();
    return;
  }
  enterWorkspace(me);
}

boot();
