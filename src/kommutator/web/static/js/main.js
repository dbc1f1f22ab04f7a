// The agent workspace: log in, the conversation list, one conversation, the customer card and knowledge base
// beside it; administrators and supervisors also reach the administration screens from the top bar.
// Live: one WebSocket (live.js) says what changed; the screen then reads it from the REST API, and after every
// reconnect it catches up the same way, so nothing is missed and nothing shows twice. A slow safety refresh
// covers anything a socket could not say. Every customer-supplied string goes in as text (see dom.js).

import "./texts/workspace.js";
import { ADMIN_SECTIONS, adminLangChanged, initAdmin, refreshAdmin, resetAdmin, showAdmin } from "./admin.js";
import { PEOPLE_SECTIONS, initPeople, peopleLangChanged, resetPeople, showPeople } from "./admin/people.js";
import { ApiError, get, patch, post, setCsrfToken } from "./api.js";
import { initContact, resetContact } from "./contact.js";
import { openStartDialog } from "./outbound.js";
import { show } from "./dom.js";
import { initialLang, lang, LANGUAGES, setLang, t } from "./i18n.js";
import { LiveSocket } from "./live.js";
import { alertAgent, askPermission, unlockAudio } from "./notify.js";
import { fillChannels, initComposer, stopTyping, updateComposerMode } from "./workspace/composer.js";
import { catchUp, initTimeline, markRead, openConversation, refreshDetail, renderDetail, resetDetail,
  showTyping } from "./workspace/detail.js";
import { closeDialogs, labelsDialog, snoozeDialog, transferDialog } from "./workspace/dialogs.js";
import { initKb, kbOpened } from "./workspace/kb.js";
import { initSuggestions } from "./workspace/suggestions.js";
import { fillViewPickers, refreshList, resetList, scheduleList, selectView } from "./workspace/list.js";
import { bindElements, el, errorText, hideBanner, hooks, isSupervisor, showBanner, state } from "./workspace/state.js";
import { initTopbar, loadNotifications, notificationArrived, renderConnection, renderMe, resetTopbar,
  scheduleMe } from "./workspace/topbar.js";

const SAFETY_REFRESH_MS = 60_000;
let safetyTimer = null;
const live = new LiveSocket({ onEvent, onState: renderConnection, onConnected: catchUpAll });

function bind() {
  bindElements({
    boot: "boot", loginView: "login-view", loginForm: "login-form", loginEmail: "login-email",
    loginPassword: "login-password", loginError: "login-error", loginSubmit: "login-submit", loginLang: "login-lang",
    workspace: "workspace-view", meName: "me-name", meAvatar: "me-avatar", langSelect: "lang-select",
    logout: "logout-button", banner: "banner", bannerText: "banner-text", bannerClose: "banner-close",
    statusFilter: "status-filter", channelFilter: "channel-filter", labelFilter: "label-filter",
    search: "search-input", teamView: "team-view", list: "conversation-list", listEmpty: "list-empty",
    placeholder: "conv-placeholder", convView: "conv-view", convTitle: "conv-title", convAvatar: "conv-avatar",
    convMeta: "conv-meta", labelsBox: "conv-labels", assignMe: "btn-assign-me", transfer: "btn-transfer",
    snooze: "btn-snooze", labels: "btn-labels", resolve: "btn-resolve", reopen: "btn-reopen",
    handover: "handover", handoverTitle: "handover-title", handoverText: "handover-text", timeline: "timeline",
    typing: "typing-indicator", suggestions: "suggestions", suggestionList: "suggestion-list",
    contactBody: "contact-body", composer: "composer", replyText: "reply-text",
    replyChannel: "reply-channel", replyChannelBox: "reply-channel-box", cannedBox: "canned-suggestions",
    noteToggle: "note-toggle", send: "send-button", nav: "main-nav", inbox: "inbox-view", admin: "admin-view",
    presence: "presence-select", presenceDot: "presence-dot", load: "my-load", connection: "connection",
    connectionText: "connection-text", bell: "bell", bellWrap: "bell-wrap", bellMenu: "bell-menu",
    bellCount: "bell-count", bellList: "bell-list", bellEmpty: "bell-empty", bellReadAll: "bell-read-all",
    notifyEnable: "notify-enable", sideTabs: "side-tabs", contactPanel: "contact-card", kbPanel: "kb-panel",
    kbForm: "kb-form", kbSearch: "kb-search", kbResults: "kb-results", kbEmpty: "kb-empty",
  });
  el.tabs = [...document.querySelectorAll(".tab[data-view]")];
  el.navLinks = [...document.querySelectorAll(".mainnav__link[data-section]")];
  el.sideTabButtons = [...document.querySelectorAll(".side-tab[data-panel]")];
}

// ---- failures --------------------------------------------------------------------------------------------

function failed(err) {
  if (err instanceof ApiError && err.status === 401) {
    if (state.me) toLogin(t("error.sessionExpired"));
    return;
  }
  showBanner(errorText(err));
}

// ---- language --------------------------------------------------------------------------------------------

function applyLang(next) {
  setLang(next);
  el.langSelect.value = lang();
  el.loginLang.value = lang();
  updateComposerMode();
  if (state.me) {
    renderMe();
    renderConnection(state.connection);
    fillViewPickers();
    refreshList();
    if (state.detail) renderDetail();
    adminLangChanged();
    peopleLangChanged();
  }
}

// Saves run one after another, each deciding from the answer of the one before: two quick changes
// (en, then back to ru) must end with the last choice stored, whatever order the requests would arrive in.
let langSaved = Promise.resolve();

function changeLang(next) {
  if (!LANGUAGES.includes(next)) return langSaved;
  applyLang(next);
  langSaved = langSaved.then(async () => {
    if (!state.me || state.me.locale === next) return;
    try {
      state.me = await patch(`/users/${state.me.id}`, { locale: next });
    } catch (err) {
      failed(err);
    }
  });
  return langSaved;
}

// ---- login / logout --------------------------------------------------------------------------------------

function toLogin(message = "") {
  live.stop();
  stopSafety();
  closeDialogs();
  state.me = null;
  resetDetail();
  resetList();
  state.drafts.clear();
  state.users.clear();
  state.teams.clear();
  state.queues.clear();
  state.channels.clear();
  state.unread.clear();
  state.typing.clear();
  state.canned = [];
  setCsrfToken("");
  resetContact();
  resetTopbar();
  el.replyText.value = "";
  resetAdmin();
  resetPeople();
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
  askPermission(); // the submit is a user gesture: the one moment a browser lets us ask
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
  state.me = me.user;
  applyLang(me.user.locale);
  setCsrfToken(me.csrf_token);
  el.meName.textContent = me.user.name;
  el.meName.title = me.user.email;
  el.meAvatar.replaceChildren();
  hideBanner();
  show(el.boot, false);
  show(el.loginView, false);
  show(el.workspace);
  show(el.convView, false);
  show(el.placeholder);
  el.placeholder.dataset.i18n = "conv.pick";
  el.placeholder.textContent = t("conv.pick");
  show(el.nav, isSupervisor());
  for (const link of el.navLinks) show(link, sectionAllowed(link.dataset.section));
  renderMe();
  loadDirectory();
  loadNotifications();
  route();
  live.start();
  startSafety();
}

// ---- sections ----------------------------------------------------------------------------------------------

const SUPERVISOR_SECTIONS = ["canned"];

function sectionAllowed(section) {
  if (section === "inbox") return true;
  if (!state.me) return false;
  if (state.me.role === "admin") return ADMIN_SECTIONS.includes(section) || PEOPLE_SECTIONS.includes(section);
  return isSupervisor() && SUPERVISOR_SECTIONS.includes(section);
}

function route() {
  if (!state.me) return;
  const wanted = window.location.hash.replace(/^#/, "");
  const section = wanted && sectionAllowed(wanted) ? wanted : "inbox";
  state.section = section;
  for (const link of el.navLinks) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  show(el.inbox, section === "inbox");
  show(el.admin, section !== "inbox");
  if (section === "inbox") {
    resetAdmin();
    resetPeople();
    refreshList();
    if (state.selectedId !== null) refreshDetail();
  } else if (ADMIN_SECTIONS.includes(section)) {
    resetPeople();
    showAdmin(section);
  } else {
    resetAdmin();
    showPeople(section);
  }
}

/** Users, teams, queues, channels and canned responses: names instead of ids, pickers, shortcuts. */
async function loadDirectory() {
  const [users, teams, queues, channels, canned] = await Promise.allSettled([get("/users?limit=200"),
    get("/teams"), get("/queues"), get("/channels"), get("/canned-responses")]);
  if (!state.me) return;
  if (users.status === "fulfilled") for (const u of users.value.items) state.users.set(u.id, u);
  if (teams.status === "fulfilled") for (const x of teams.value) state.teams.set(x.id, x);
  if (queues.status === "fulfilled" && Array.isArray(queues.value)) for (const q of queues.value) state.queues.set(q.id, q);
  if (channels.status === "fulfilled" && Array.isArray(channels.value)) {
    for (const c of channels.value) state.channels.set(c.id, c);
  }
  if (canned.status === "fulfilled") state.canned = canned.value;
  fillViewPickers();
  refreshList();
  if (state.detail) renderDetail();
}

/** The canned responses again (one was added, changed or deleted: the socket said so). */
async function loadCanned() {
  try {
    const canned = await get("/canned-responses");
    if (state.me) state.canned = canned;
  } catch (err) {
    failed(err);
  }
}

// ---- live events -------------------------------------------------------------------------------------------

function startSafety() {
  stopSafety();
  safetyTimer = window.setInterval(() => {
    if (!state.me || document.hidden) return;
    if (state.section === "inbox") catchUpAll();
    else refreshAdmin();
  }, SAFETY_REFRESH_MS);
}

function stopSafety() {
  if (safetyTimer !== null) window.clearInterval(safetyTimer);
  safetyTimer = null;
}

/** Connected (first time or again): read the list and the open conversation's news from the database. */
function catchUpAll() {
  if (!state.me) return;
  refreshList();
  if (state.selectedId !== null) refreshDetail().then(catchUp);
  scheduleMe();
  loadNotifications();
}

/** The user's role or teams changed: the socket already hears only what the new rights allow; the screen reads
 * who it is and its lists again (a section no longer allowed falls back to the inbox). */
async function accessChanged() {
  try {
    const me = await get("/auth/me");
    if (!state.me) return;
    state.me = me.user;
    renderMe();
    show(el.nav, isSupervisor());
    for (const link of el.navLinks) show(link, sectionAllowed(link.dataset.section));
    route();
    loadNotifications();
  } catch (err) {
    failed(err);
  }
}

function contactNameOf(id) {
  const row = el.list.querySelector(`.conv-row[data-id="${id}"] .conv-row__name`);
  return row ? row.textContent : t("msg.customer");
}

function onEvent(event) {
  if (!state.me) return;
  const cid = event.conversation_id;
  const open = cid !== undefined && cid === state.selectedId;
  switch (event.kind) {
    case "session.ended":
      toLogin(t("error.sessionExpired"));
      return;
    case "access.changed":
      accessChanged();
      return;
    case "message.created":
      scheduleList();
      if (open) catchUp();
      if (event.direction === "in" && event.assignee_id === state.me.id && (document.hidden || !open)) {
        alertAgent(t("ws.alert.message", { name: contactNameOf(cid) }), "", () => openConversation(cid));
      }
      if (event.direction === "in" && state.typing.delete(cid)) showTyping({ conversation_id: cid, typing: false });
      return;
    case "message.status_changed":
    case "message.edited":
      if (open) refreshDetail();
      return;
    case "conversation.created":
      scheduleList();
      return;
    case "conversation.updated": {
      scheduleList();
      const into = event.changes && event.changes.merged_into;
      if (open && into) {
        // Two contacts were merged and this conversation folded into another: follow it there.
        openConversation(into).then(() => showBanner(t("ws.mergedInto", { id: into }), "info", into));
        return;
      }
      if (open) refreshDetail();
      const assignee = event.changes && event.changes.assignee_id;
      if (assignee && assignee[1] === state.me.id && assignee[0] !== state.me.id) {
        alertAgent(t("ws.alert.assigned"), contactNameOf(cid), () => openConversation(cid));
      }
      if (assignee && (assignee[0] === state.me.id || assignee[1] === state.me.id)) scheduleMe();
      return;
    }
    case "conversation.typing":
      showTyping(event);
      return;
    case "notification.created":
      notificationArrived(event);
      return;
    case "canned.changed":
      loadCanned();
      return;
    default:
  }
}

// ---- the conversation's buttons ----------------------------------------------------------------------------

async function act(button, path, body, doneKey) {
  const id = state.selectedId;
  if (id === null) return;
  button.disabled = true;
  try {
    await post(`/conversations/${id}/${path}`, body);
    showBanner(t(doneKey), "info", id); // about this conversation: it goes when another one is opened
    await refreshDetail();
    refreshList();
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
}

function sidePanel(panel) {
  for (const b of el.sideTabButtons) b.setAttribute("aria-selected", String(b.dataset.panel === panel));
  show(el.contactPanel, panel === "contact");
  show(el.kbPanel, panel === "kb");
  if (panel === "kb") kbOpened();
}

// ---- start ---------------------------------------------------------------------------------------------------

function wire() {
  el.loginForm.addEventListener("submit", onLogin);
  el.loginLang.addEventListener("change", () => applyLang(el.loginLang.value));
  el.langSelect.addEventListener("change", () => changeLang(el.langSelect.value));
  el.logout.addEventListener("click", onLogout);
  el.bannerClose.addEventListener("click", hideBanner);
  window.addEventListener("hashchange", route);
  for (const tab of el.tabs) tab.addEventListener("click", () => selectView(tab.dataset.view));
  el.teamView.addEventListener("change", () => selectView(el.teamView.value || "all"));
  el.statusFilter.addEventListener("change", () => { state.filters.status = el.statusFilter.value; refreshList(); });
  el.channelFilter.addEventListener("change", () => { state.filters.channel = el.channelFilter.value; refreshList(); });
  let searchTimer = null;
  const typed = (key, input) => () => {
    state.filters[key] = input.value;
    if (searchTimer !== null) window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(refreshList, 250);
  };
  el.search.addEventListener("input", typed("q", el.search));
  el.labelFilter.addEventListener("input", typed("label", el.labelFilter));
  el.resolve.addEventListener("click", () => act(el.resolve, "status", { status: "resolved" }, "action.done.resolved"));
  el.reopen.addEventListener("click", () => act(el.reopen, "status", { status: "open" }, "action.done.reopened"));
  el.assignMe.addEventListener("click", () => act(el.assignMe, "assign", { assignee_id: state.me.id },
    "action.done.assigned"));
  el.transfer.addEventListener("click", transferDialog);
  document.getElementById("new-conversation").addEventListener("click", () => openStartDialog({ contact: null,
    channels: () => state.channels, onStarted: hooks.openConversation, onError: failed }));
  el.snooze.addEventListener("click", snoozeDialog);
  el.labels.addEventListener("click", labelsDialog);
  for (const b of el.sideTabButtons) b.addEventListener("click", () => sidePanel(b.dataset.panel));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.me && state.section === "inbox") markRead();
  });
  document.addEventListener("pointerdown", unlockAudio, { once: true });
}

async function boot() {
  bind();
  hooks.failed = failed;
  hooks.refreshList = refreshList;
  hooks.refreshDetail = refreshDetail;
  hooks.openConversation = (id) => {
    if (state.section !== "inbox") window.location.hash = "";
    stopTyping();
    openConversation(id);
  };
  hooks.detailChanged = fillChannels;
  initAdmin({ root: el.admin, onError: failed, onChannelsChanged: loadDirectory });
  initPeople({ root: el.admin, onError: failed, onChanged: loadDirectory, me: () => state.me });
  initContact({ root: el.contactBody, me: () => state.me, users: () => state.users, channels: () => state.channels,
    onError: failed, onChanged: () => Promise.all([refreshDetail(), refreshList()]), openConversation });
  initComposer(live);
  initKb();
  initTimeline();
  initSuggestions();
  initTopbar();
  applyLang(initialLang());
  wire();
  // For tests and support: drop the live connection as a network failure would (it reconnects and catches up).
  // keys.js (shortcuts, the command palette) opens conversations through the same path as a click in the list.
  window.kommutator = { dropConnection: (holdMs) => live.drop(holdMs), connection: () => state.connection,
    openConversation: (id) => { if (state.section !== "inbox") window.location.hash = ""; hooks.openConversation(id); },
    selectedId: () => state.selectedId };
  let me = null;
  try {
    me = await get("/auth/me");
  } catch (err) {
    toLogin(err instanceof ApiError && err.status === 401 ? "" : errorText(err));
    return;
  }
  if (!me.csrf_token) {
    toLogin();
    return;
  }
  enterWorkspace(me);
}

boot();
