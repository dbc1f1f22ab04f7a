// The supervisor's live view (#live) and the quality settings (#quality, quality-admin.js): queues, agents,
// the conversations nearest to a missed deadline, and alerts, refreshed live from the socket. Any user who
// follows an alert's link (#conversation/<id>) gets the conversation in a side panel; supervisors can take it
// over, reassign it and whisper to the agent there. Loaded by its own <script> tag: it adds its links to the
// top bar and shows its sections itself, so the workspace's main.js needs no change.
// The conversation panel is supervisor-drawer.js. Customer text only ever goes through textContent (dom.js h()).

import "./texts/quality.js";
import { ApiError, get, post } from "./api.js";
import { h } from "./dom.js";
import { lang, shortTime, t } from "./i18n.js";
import { showQualityAdmin } from "./quality-admin.js";
import { closeDrawer, drawerId, initDrawer, loadDrawer, openDrawer, renderDrawer, renderTyping } from "./supervisor-drawer.js";

const SECTIONS = ["live", "quality"];
const ALERT_KINDS = ["sla.warning", "sla.breach", "standard.violation", "csat.negative"];
const POLL_MS = 15000;
const TYPING_MS = 6000;

const state = {
  me: null, section: null, live: null, alerts: [], socket: null, retry: 1000, typing: new Map(),
  refreshTimer: null, tickTimer: null, pollTimer: null,
};
const el = {};

const isSupervisor = () => Boolean(state.me && ["admin", "supervisor"].includes(state.me.role));

// ---- small helpers ---------------------------------------------------------------------------------------

function duration(seconds) {
  const s = Math.max(0, Math.round(Math.abs(seconds)));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh) return `${hh}:${String(mm).padStart(2, "0")}:${String(ss).padStart(2, "0")}`;
  return `${mm}:${String(ss).padStart(2, "0")}`;
}

function secondsTo(iso) {
  return (new Date(iso).getTime() - Date.now()) / 1000;
}

function failed(err) {
  const text = err instanceof ApiError ? err.detail || `${err.status} ${err.code}` : String(err);
  if (el.error) {
    el.error.textContent = text;
    el.error.hidden = false;
  }
}

function beep() {
  // A short two-tone chime for a new alert; browsers allow it after the user interacted with the page.
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    const ctx = new Ctx();
    [880, 660].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.12, ctx.currentTime + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + i * 0.18 + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + i * 0.18);
      osc.stop(ctx.currentTime + i * 0.18 + 0.17);
    });
  } catch {
    // no sound is better than a broken view
  }
}

// ---- sections and routing ---------------------------------------------------------------------------------

function ensureView() {
  if (el.view) return;
  // Focusable: the live view scrolls, and a keyboard user must be able to scroll it.
  el.view = h("section", { class: "qlive", attrs: { id: "live-view", "aria-live": "polite", tabindex: "0" } });
  el.view.hidden = true;
  document.getElementById("workspace-view").append(el.view);
}

function addNavLinks() {
  const nav = document.getElementById("main-nav");
  if (!nav || nav.querySelector("[data-quality-section]")) return;
  for (const section of SECTIONS) {
    nav.append(h("a", { class: "mainnav__link", attrs: { href: `#${section}` }, dataset: { qualitySection: section },
      text: t(`q.nav.${section}`) }));
  }
  nav.hidden = false;
}

function route() {
  const hash = window.location.hash.replace(/^#/, "");
  const conv = /^conversation\/(\d+)$/.exec(hash);
  if (conv && state.me) openDrawer(Number(conv[1]));
  const section = isSupervisor() && SECTIONS.includes(hash) ? hash : null;
  state.section = section;
  const inbox = document.getElementById("inbox-view");
  const admin = document.getElementById("admin-view");
  for (const link of document.querySelectorAll("#main-nav .mainnav__link")) {
    const mine = link.dataset.qualitySection === section;
    if (section) {
      if (mine) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    } else if (link.dataset.qualitySection) {
      link.removeAttribute("aria-current");
    }
  }
  if (!el.view) return;
  el.view.hidden = !section;
  if (section) {
    if (inbox) inbox.hidden = true;
    if (admin) admin.hidden = true;
  }
  if (section === "live") startLive();
  else stopLive();
  if (section === "quality") showQualityAdmin(el.view, { onError: failed });
}

// ---- the live view ----------------------------------------------------------------------------------------

function startLive() {
  el.view.replaceChildren(
    h("div", { class: "qlive__head" },
      h("h2", { class: "qlive__title", text: t("q.live.title") }),
      el.updated = h("span", { class: "muted" })),
    el.error = h("p", { class: "form-error", attrs: { role: "alert" } }),
    el.kpis = h("div", { class: "qkpis" }),
    h("div", { class: "qgrid" },
      h("div", { class: "qcol" },
        panel(t("q.live.risk"), el.risk = h("ol", { class: "qrisk" })),
        panel(t("q.live.why"), el.why = h("ol", { class: "qrisk qwhy" })),
        panel(t("q.live.queues"), el.queues = h("div"))),
      h("div", { class: "qcol" },
        panel(t("q.live.alertFeed"), el.alerts = h("ol", { class: "qalerts" })),
        panel(t("q.live.agents"), el.agents = h("div")))));
  el.error.hidden = true;
  refresh();
  connect();
  clearInterval(state.tickTimer);
  clearInterval(state.pollTimer);
  state.tickTimer = setInterval(tick, 1000);
  state.pollTimer = setInterval(refresh, POLL_MS);
}

function stopLive() {
  clearInterval(state.tickTimer);
  clearInterval(state.pollTimer);
  state.tickTimer = state.pollTimer = null;
}

function panel(title, body) {
  return h("section", { class: "qpanel" }, h("h3", { class: "qpanel__title", text: title }), body);
}

function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    if (state.section === "live") refresh();
    if (drawerId()) loadDrawer();
  }, 800);
}

async function refresh() {
  try {
    const [live, alerts] = await Promise.all([get("/quality/live"), get("/quality/alerts?limit=30")]);
    state.live = live;
    state.alerts = alerts.items;
    if (state.section === "live") render();
  } catch (err) {
    failed(err);
  }
}

function render() {
  const live = state.live;
  el.updated.textContent = t("q.live.updated", { time: shortTime(live.at) });
  const waiting = live.queues.reduce((n, q) => n + q.waiting, 0);
  const longest = Math.max(0, ...live.queues.map((q) => q.longest_wait_seconds));
  const met = live.queues.reduce((n, q) => n + q.service_level.met, 0);
  const counted = live.queues.reduce((n, q) => n + q.service_level.counted, 0);
  const online = live.agents.filter((a) => a.presence === "online").length;
  el.kpis.replaceChildren(
    kpi(t("q.live.waiting"), String(waiting), waiting ? "warn" : ""),
    kpi(t("q.live.longest"), duration(longest), longest > 300 ? "bad" : ""),
    kpi(t("q.live.sl"), counted ? `${Math.round((100 * met) / counted)}%` : t("q.sl.none")),
    kpi(t("q.live.alerts"), String(live.open_alerts), live.open_alerts ? "bad" : "good"),
    kpi(t("q.live.online"), `${online} / ${live.agents.length}`));
  renderRisk();
  renderWhy();
  el.queues.replaceChildren(table([t("q.col.queue"), t("q.col.waiting"), t("q.col.longest"), t("q.col.sl")],
    live.queues.map((q) => [q.name, String(q.waiting), duration(q.longest_wait_seconds),
      q.service_level.percent === null ? t("q.sl.none") : t("q.sl.value", { percent: q.service_level.percent,
        target: q.service_level.target_percent, seconds: q.service_level.target_seconds })])));
  el.agents.replaceChildren(table([t("q.col.agent"), t("q.col.presence"), t("q.col.load"), t("q.col.inProgress"),
    t("q.col.lastReply")], live.agents.map((a) => [
    a.name,
    h("span", { class: `qdot qdot--${a.presence}`, text: t(`q.presence.${a.presence}`) }),
    h("span", { class: "qload" }, h("span", { class: "qload__bar", attrs: { "data-load": loadStep(a.load_percent) } }),
      `${a.load_percent}%`),
    String(a.in_progress),
    a.since_last_reply_seconds === null ? "—" : duration(a.since_last_reply_seconds)])));
  renderAlerts();
}

function loadStep(percent) {
  return String(Math.min(10, Math.max(0, Math.round(percent / 10))));
}

function kpi(label, value, tone = "") {
  return h("div", { class: ["qkpi", tone && `qkpi--${tone}`] }, h("span", { class: "qkpi__value", text: value }),
    h("span", { class: "qkpi__label", text: label }));
}

function table(heads, rows) {
  return h("table", { class: "qtable" },
    h("thead", {}, h("tr", {}, heads.map((x) => h("th", { text: x })))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))));
}

function renderRisk() {
  const items = state.live ? state.live.at_risk : [];
  if (!items.length) {
    el.risk.replaceChildren(h("li", { class: "empty", text: t("q.live.riskEmpty") }));
    return;
  }
  el.risk.replaceChildren(...items.map((r) => {
    const typing = state.typing.get(r.conversation_id);
    return h("li", { class: ["qrisk__item", r.breached ? "qrisk__item--over" : r.warned && "qrisk__item--warn"],
      dataset: { conversationId: r.conversation_id, dueAt: r.due_at },
      on: { click: () => openDrawer(r.conversation_id) } },
    h("span", { class: "qrisk__time", dataset: { dueAt: r.due_at } }),
    h("span", { class: "qrisk__main" },
      h("span", { class: "qrisk__name", text: r.contact_name || `#${r.conversation_id}` }),
      h("span", { class: "qrisk__subject", text: r.subject })),
    h("span", { class: "qrisk__meta" },
      h("span", { class: "badge", text: t(`q.target.${r.target}`) }),
      h("span", { class: "muted", text: r.assignee_name || t("q.risk.unassigned") }),
      typing ? h("span", { class: "qtyping", text: t("q.typing", { name: typing.name }) }) : null));
  }));
  tick();
}

// Every conversation waiting for an agent, longest first, with why (the routing pass's finding).
function renderWhy() {
  const items = state.live && state.live.waiting ? state.live.waiting : [];
  if (!items.length) {
    el.why.replaceChildren(h("li", { class: "empty", text: t("q.live.whyEmpty") }));
    return;
  }
  el.why.replaceChildren(...items.map((w) => h("li", { class: "qwhy__item",
    dataset: { conversationId: w.conversation_id }, on: { click: () => openDrawer(w.conversation_id) } },
  h("span", { class: "qwhy__time", text: duration(w.waited_seconds) }),
  h("span", { class: "qrisk__main" },
    h("span", { class: "qrisk__name", text: w.contact_name || `#${w.conversation_id}` }),
    h("span", { class: "qwhy__reason", text: w.waiting_reason
      ? t(`q.why.${w.waiting_reason.code}`, w.waiting_reason.params) : t("q.why.unknown") })))));
}

function tick() {
  for (const node of document.querySelectorAll(".qrisk__time[data-due-at]")) {
    const left = secondsTo(node.dataset.dueAt);
    node.textContent = left >= 0 ? t("q.risk.left", { time: duration(left) }) : t("q.risk.over", { time: duration(left) });
    node.classList.toggle("qrisk__time--over", left < 0);
  }
  const now = Date.now();
  for (const [id, typing] of state.typing) if (typing.until < now) state.typing.delete(id);
}

// The alert's title in the interface's language (the server keeps both in data.texts), else as recorded.
function alertTitle(a) {
  const own = a.data && a.data.texts && a.data.texts[lang()];
  return (own && own.title) || a.title;
}

function renderAlerts() {
  if (!state.alerts.length) {
    el.alerts.replaceChildren(h("li", { class: "empty", text: t("q.live.alertsEmpty") }));
    return;
  }
  el.alerts.replaceChildren(...state.alerts.map((a) => h("li", { class: ["qalert", `qalert--${a.severity}`,
    a.acknowledged_at && "qalert--acked"] },
  h("span", { class: "qalert__kind", text: t(`q.kind.${a.kind}`) }),
  h("span", { class: "qalert__title", text: alertTitle(a) }),
  h("span", { class: "qalert__time muted", text: shortTime(a.created_at) }),
  h("span", { class: "qalert__actions" },
    a.conversation_id ? h("button", { class: "btn btn--small", attrs: { type: "button" }, text: t("q.alert.open"),
      on: { click: () => openDrawer(a.conversation_id) } }) : null,
    a.acknowledged_at ? h("span", { class: "muted", text: t("q.alert.acked") })
      : h("button", { class: "btn btn--small", attrs: { type: "button" }, text: t("q.alert.ack"),
        on: { click: () => acknowledge(a.id) } })))));
}

async function acknowledge(id) {
  try {
    await post(`/quality/alerts/${id}/ack`);
    await refresh();
  } catch (err) {
    failed(err);
  }
}

// ---- the socket ----------------------------------------------------------------------------------------

function connect() {
  if (state.socket || !state.me) return;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/api/v1/realtime`);
  state.socket = socket;
  socket.addEventListener("message", (e) => {
    let event;
    try {
      event = JSON.parse(e.data);
    } catch {
      return;
    }
    onEvent(event);
  });
  socket.addEventListener("open", () => { state.retry = 1000; });
  socket.addEventListener("close", () => {
    state.socket = null;
    if (state.me && (state.section === "live" || drawerId())) {
      setTimeout(connect, state.retry);
      state.retry = Math.min(30000, state.retry * 2);
    }
  });
}

function onEvent(event) {
  if (event.kind === "conversation.typing") {
    if (event.who !== "agent") return;
    if (event.typing) state.typing.set(event.conversation_id, { name: event.name, until: Date.now() + TYPING_MS });
    else state.typing.delete(event.conversation_id);
    if (state.section === "live" && state.live) renderRisk();
    if (drawerId() === event.conversation_id) renderTyping();
    return;
  }
  if (event.kind === "notification.created" && ALERT_KINDS.includes(event.notification_kind)) {
    if (event.severity === "critical" || event.notification_kind === "sla.warning") beep();
  }
  if (event.kind !== "hello") scheduleRefresh();
}

// ---- start ------------------------------------------------------------------------------------------------

async function onWorkspace() {
  const workspace = document.getElementById("workspace-view");
  if (!workspace || workspace.hidden) {
    state.me = null;
    stopLive();
    if (state.socket) state.socket.close();
    if (drawerId()) closeDrawer();
    return;
  }
  if (state.me) return;
  try {
    const me = await get("/auth/me");
    state.me = me.user || me;
  } catch {
    return;
  }
  ensureView();
  if (isSupervisor()) addNavLinks();
  route();
}

function languageChanged() {
  for (const link of document.querySelectorAll("#main-nav [data-quality-section]")) {
    link.textContent = t(`q.nav.${link.dataset.qualitySection}`);
  }
  if (state.section) route();
  if (drawerId()) renderDrawer();
}

function boot() {
  initDrawer({ me: () => state.me, isSupervisor, agents: () => (state.live ? state.live.agents : []),
    typing: state.typing, section: () => state.section, tick, connect,
    onChanged: () => (state.section === "live" ? refresh() : null) });
  // main.js switches the language on this select; our texts follow once it has (same event, later listener).
  const select = document.getElementById("lang-select");
  if (select) select.addEventListener("change", () => setTimeout(languageChanged, 0));
  document.head.append(h("link", { attrs: { rel: "stylesheet", href: "/static/css/quality.css" } }));
  const workspace = document.getElementById("workspace-view");
  if (!workspace) return;
  new MutationObserver(onWorkspace).observe(workspace, { attributes: true, attributeFilter: ["hidden"] });
  window.addEventListener("hashchange", route);
  onWorkspace();
}

boot();
