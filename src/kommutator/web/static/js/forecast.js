// The staffing forecast (#forecast, supervisors and administrators): per queue, a week of half hours with the
// arrivals expected and the agents the service-level target needs (Erlang C), what-if inputs, and how past
// weeks' forecasts compared with what arrived. Loaded by its own <script> tag like supervisor.js: it adds its
// link to the top bar and shows its section itself. Figures come from /api/v1/forecast as they are.

import "./texts/forecast.js";
import { ApiError, get } from "./api.js";
import { h } from "./dom.js";
import { lang, t } from "./i18n.js";

const SECTION = "forecast";
const METRICS = ["agents", "agents_scheduled", "arrivals", "occupancy"];

const state = { me: null, queues: [], queueId: null, forecast: null, accuracy: null, metric: "agents", seq: 0 };
const el = {};

const isSupervisor = () => Boolean(state.me && ["admin", "supervisor"].includes(state.me.role));
const active = () => isSupervisor() && window.location.hash.replace(/^#/, "") === SECTION;

function num(value, digits = 0) {
  return new Intl.NumberFormat(lang(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

function day(iso, options) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Intl.DateTimeFormat(lang(), { timeZone: "UTC", ...options }).format(new Date(Date.UTC(y, m - 1, d)));
}

function failed(err) {
  el.error.textContent = err instanceof ApiError ? err.detail || `${err.status} ${err.code}` : String(err);
  el.error.hidden = false;
}

// ---- the section --------------------------------------------------------------------------------------------

function ensureView() {
  if (el.view) return;
  el.view = h("section", { class: "fc", attrs: { id: "forecast-view", "aria-labelledby": "fc-title" } });
  el.view.hidden = true;
  document.getElementById("workspace-view").append(el.view);
}

function addNavLink() {
  const nav = document.getElementById("main-nav");
  if (!nav || nav.querySelector("[data-forecast-section]")) return;
  nav.append(h("a", { class: "mainnav__link", attrs: { href: `#${SECTION}` }, dataset: { forecastSection: SECTION },
    text: t("fc.nav") }));
  nav.hidden = false;
}

function hideOthers() {
  for (const id of ["inbox-view", "admin-view", "live-view"]) {
    const other = document.getElementById(id);
    if (other && !other.hidden) other.hidden = true;
  }
}

function route() {
  if (!el.view) return;
  const on = active();
  const link = document.querySelector("#main-nav [data-forecast-section]");
  if (link) {
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  el.view.hidden = !on;
  if (!on) return;
  hideOthers();
  if (!el.form) build();
  if (!state.queues.length) loadQueues();
}

// ---- the form -----------------------------------------------------------------------------------------------

function input(id, label, attrs = {}) {
  return h("label", { class: "field" }, h("span", { class: "field__label", text: label }),
    h("input", { attrs: { id, type: "number", inputmode: "decimal", ...attrs } }));
}

function build() {
  el.view.replaceChildren(
    h("div", { class: "fc__head" }, el.title = h("h2", { attrs: { id: "fc-title" }, text: t("fc.title") }),
      el.status = h("span", { class: "muted", attrs: { role: "status" } })),
    el.form = h("form", { class: "fc__form", attrs: { id: "fc-form", novalidate: true },
      on: { submit: (e) => { e.preventDefault(); load(); } } },
    h("label", { class: "field field--wide" }, h("span", { class: "field__label", text: t("fc.queue") }),
      el.queue = h("select", { attrs: { id: "fc-queue" }, on: { change: () => { resetInputs(); load(); } } })),
    h("label", { class: "field" }, h("span", { class: "field__label", text: t("fc.start") }),
      el.start = h("input", { attrs: { id: "fc-start", type: "date" } })),
    input("fc-target-percent", t("fc.targetPercent"), { min: 1, max: 99.9, step: "any" }),
    input("fc-target-seconds", t("fc.targetSeconds"), { min: 0, max: 86400, step: 1 }),
    input("fc-multiplier", t("fc.multiplier"), { min: 0, max: 1000, step: "any", placeholder: "100" }),
    input("fc-aht", t("fc.aht"), { min: 1, max: 86400, step: "any" }),
    input("fc-shrinkage", t("fc.shrinkage"), { min: 0, max: 90, step: "any", placeholder: "30" }),
    input("fc-concurrency", t("fc.concurrency"), { min: 1, max: 20, step: 1, placeholder: "1" }),
    h("button", { class: "btn btn--primary", attrs: { id: "fc-apply", type: "submit" }, text: t("fc.apply") }),
    h("button", { class: "btn", attrs: { id: "fc-reset", type: "button" }, text: t("fc.reset"),
      on: { click: () => { resetInputs(); load(); } } })),
    el.error = h("p", { class: "form-error", attrs: { role: "alert" } }),
    el.method = h("p", { class: "fc__method muted" }),
    el.kpis = h("div", { class: "qkpis", attrs: { id: "fc-kpis" } }),
    h("div", { class: "fc__bar" }, h("label", {}, `${t("fc.show")} `,
      el.metric = h("select", { attrs: { id: "fc-metric" }, on: { change: () => { state.metric = el.metric.value; renderHeat(); } } },
        METRICS.map((m) => h("option", { attrs: { value: m }, text: t(`fc.metric.${m}`) })))),
    el.heatTitle = h("h3", { class: "qpanel__title" })),
    el.heat = h("div", { class: "fc__heat" }),
    h("section", { class: "qpanel fc__acc" }, el.accTitle = h("h3", { class: "qpanel__title", text: t("fc.acc.title") }),
      el.accHint = h("p", { class: "muted", text: t("fc.acc.hint") }), el.acc = h("div")));
  el.error.hidden = true;
  el.metric.value = state.metric;
}

function resetInputs() {
  for (const id of ["fc-start", "fc-target-percent", "fc-target-seconds", "fc-multiplier", "fc-aht", "fc-shrinkage",
    "fc-concurrency"]) document.getElementById(id).value = "";
}

/** The queue's business-hours zone, else the browser's: half hours are shown on a clock the supervisor knows. */
function zone() {
  const queue = state.queues.find((q) => q.id === state.queueId);
  const own = queue && queue.business_hours && queue.business_hours.timezone;
  return own || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function query() {
  const params = new URLSearchParams({ tz: zone() });
  const value = (id) => document.getElementById(id).value.trim();
  if (value("fc-start")) params.set("start", value("fc-start"));
  if (value("fc-target-percent")) params.set("target_percent", value("fc-target-percent"));
  if (value("fc-target-seconds")) params.set("target_seconds", value("fc-target-seconds"));
  if (value("fc-multiplier")) params.set("arrivals_multiplier", String(Number(value("fc-multiplier")) / 100));
  if (value("fc-aht")) params.set("aht_seconds", value("fc-aht"));
  if (value("fc-shrinkage")) params.set("shrinkage", String(Number(value("fc-shrinkage")) / 100));
  if (value("fc-concurrency")) params.set("concurrency", value("fc-concurrency"));
  return params.toString();
}

async function loadQueues() {
  try {
    state.queues = await get("/queues");
  } catch (err) {
    failed(err);
    return;
  }
  if (!state.queues.length) {
    el.heat.replaceChildren(h("p", { class: "empty", text: t("fc.noQueues") }));
    return;
  }
  el.queue.replaceChildren(...state.queues.map((q) => h("option", { attrs: { value: q.id }, text: q.name })));
  el.queue.value = String(state.queueId || state.queues[0].id);
  load();
}

async function load() {
  const queueId = Number(el.queue.value);
  if (!queueId) return;
  state.queueId = queueId;
  const seq = ++state.seq;
  el.error.hidden = true;
  el.status.textContent = t("fc.loading");
  el.view.setAttribute("aria-busy", "true");
  try {
    const tz = encodeURIComponent(zone());
    const [forecast, accuracy] = await Promise.all([get(`/forecast/queues/${queueId}?${query()}`),
      get(`/forecast/queues/${queueId}/accuracy?weeks=4&tz=${tz}`)]);
    if (seq !== state.seq) return;
    state.forecast = forecast;
    state.accuracy = accuracy;
    render();
  } catch (err) {
    if (seq === state.seq) failed(err);
  } finally {
    if (seq === state.seq) {
      el.status.textContent = "";
      el.view.removeAttribute("aria-busy");
    }
  }
}

// ---- rendering ----------------------------------------------------------------------------------------------

function kpi(label, value, hint = "", id = "") {
  return h("div", { class: "qkpi", dataset: id ? { kpi: id } : {}, attrs: { title: hint || null } },
    h("span", { class: "qkpi__value", text: value }), h("span", { class: "qkpi__label", text: label }));
}

function render() {
  const f = state.forecast;
  el.start.value = el.start.value || f.start;
  document.getElementById("fc-aht").placeholder = f.history.average_handle_seconds === null ? ""
    : t("fc.ahtPlaceholder", { value: num(f.history.average_handle_seconds) });
  document.getElementById("fc-target-percent").placeholder = String(f.params.target_percent);
  document.getElementById("fc-target-seconds").placeholder = String(f.params.target_seconds);
  el.method.textContent = t("fc.method", { weeks: f.history.weeks });
  const ahtHint = t(`fc.aht.${f.params.aht_source}`, { count: f.history.handled_conversations });
  const trend = f.history.trend_factor;
  el.kpis.replaceChildren(
    kpi(t("fc.kpi.arrivals"), num(f.totals.arrivals, 1), "", "arrivals"),
    kpi(t("fc.kpi.peak"), num(f.totals.peak_agents), "", "peak"),
    kpi(t("fc.kpi.scheduled"), num(f.totals.peak_agents_scheduled), "", "scheduled"),
    kpi(t("fc.kpi.hours"), num(f.totals.agent_hours, 1), "", "hours"),
    kpi(t("fc.kpi.aht"), `${num(f.params.aht_seconds)} s`, ahtHint, "aht"),
    kpi(t("fc.kpi.trend"), `${trend >= 1 ? "+" : "−"}${num(Math.abs(trend - 1) * 100, 1)}%`, "", "trend"));
  renderHeat();
  renderAccuracy();
}

function cellValue(slot) {
  if (state.metric === "arrivals") return num(slot.arrivals, 1);
  if (state.metric === "occupancy") return slot.agents ? num(slot.occupancy, 1) : t("fc.none");
  return num(slot[state.metric]);
}

function renderHeat() {
  const f = state.forecast;
  if (!f) return;
  el.heatTitle.textContent = t("fc.heat.title", { tz: f.timezone });
  const dates = f.days.map((d) => d.date);
  const rows = new Map(); // "HH:MM/fold" -> {time, fold, cells: {date: slot}}
  for (const slot of f.slots) {
    const key = `${slot.time}/${slot.fold}`;
    if (!rows.has(key)) rows.set(key, { time: slot.time, fold: slot.fold, cells: {} });
    rows.get(key).cells[slot.date] = slot;
  }
  const ordered = [...rows.values()].sort((a, b) => a.time.localeCompare(b.time) || a.fold - b.fold);
  const metricOf = (s) => (state.metric === "occupancy" ? s.occupancy : s[state.metric]);
  const top = Math.max(0, ...f.slots.map(metricOf));
  el.heat.replaceChildren(h("table", { class: "fcheat", attrs: { id: "fc-heat" } },
    h("thead", {}, h("tr", {}, h("th", { text: t("fc.col.time") }),
      dates.map((d) => h("th", { dataset: { date: d }, text: day(d, { weekday: "short", day: "numeric", month: "short" }) })))),
    h("tbody", {}, ordered.map((row) => h("tr", {},
      h("th", { text: row.fold ? `${row.time} (2)` : row.time }),
      dates.map((d) => {
        const s = row.cells[d];
        if (!s) return h("td", { class: "muted", text: "" });
        const heat = top > 0 ? Math.min(9, Math.ceil((9 * metricOf(s)) / top)) : 0;
        return h("td", { dataset: { date: d, time: s.time, fold: s.fold, heat },
          attrs: { title: t("fc.cell", { date: day(d, { weekday: "short", day: "numeric", month: "short" }),
            time: s.time, arrivals: num(s.arrivals, 1), agents: s.agents, scheduled: s.agents_scheduled,
            sl: num(s.service_level, 1), occ: num(s.occupancy, 1) }) }, text: cellValue(s) });
      })))),
    h("tfoot", {},
      h("tr", { dataset: { row: "arrivals" } }, h("th", { text: t("fc.row.arrivals") }),
        f.days.map((d) => h("td", { dataset: { date: d.date }, text: num(d.arrivals, 1) }))),
      h("tr", { dataset: { row: "peak" } }, h("th", { text: t("fc.row.peak") }),
        f.days.map((d) => h("td", { dataset: { date: d.date }, text: num(d.peak_agents) }))))));
}

function percent(x) {
  return x === null || x === undefined ? t("fc.none") : `${num(x, 1)}%`;
}

function renderAccuracy() {
  const a = state.accuracy;
  if (!a) return;
  el.acc.replaceChildren(
    h("table", { class: "qtable fcacc", attrs: { id: "fc-acc" } },
      h("thead", {}, h("tr", {}, [t("fc.acc.week"), t("fc.acc.forecast"), t("fc.acc.actual"), t("fc.acc.wape"),
        t("fc.acc.mape"), t("fc.acc.dayWape")].map((x) => h("th", { text: x })))),
      h("tbody", {}, a.weeks.map((w) => h("tr", { dataset: { week: w.start } },
        h("td", {}, `${day(w.start, { day: "numeric", month: "short" })} – ${day(w.end, { day: "numeric", month: "short" })}`,
          w.had_history ? null : h("span", { class: "muted", text: ` (${t("fc.acc.noHistory")})` })),
        h("td", { text: num(w.forecast_total, 1) }), h("td", { text: num(w.actual_total) }),
        h("td", { text: percent(w.wape) }), h("td", { text: percent(w.mape) }), h("td", { text: percent(w.day_wape) }))))),
    h("p", { class: "muted", attrs: { id: "fc-acc-overall" },
      text: t("fc.acc.overall", { wape: percent(a.overall.wape), mape: percent(a.overall.mape),
        day: percent(a.overall.day_wape) }) }));
}

// ---- start --------------------------------------------------------------------------------------------------

async function onWorkspace() {
  const workspace = document.getElementById("workspace-view");
  if (!workspace || workspace.hidden) {
    state.me = null;
    state.queues = [];
    if (el.view) el.view.hidden = true;
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
  if (isSupervisor()) addNavLink();
  route();
}

function languageChanged() {
  const link = document.querySelector("#main-nav [data-forecast-section]");
  if (link) link.textContent = t("fc.nav");
  if (!el.form) return;
  const values = Object.fromEntries([...el.form.querySelectorAll("input, select")].map((x) => [x.id, x.value]));
  el.form = null;
  build();
  for (const [id, value] of Object.entries(values)) {
    const node = document.getElementById(id);
    if (node) node.value = value;
  }
  el.queue.replaceChildren(...state.queues.map((q) => h("option", { attrs: { value: q.id }, text: q.name })));
  el.queue.value = String(state.queueId || "");
  if (state.forecast) render();
}

function boot() {
  document.head.append(h("link", { attrs: { rel: "stylesheet", href: "/static/css/forecast.css" } }));
  const select = document.getElementById("lang-select");
  if (select) select.addEventListener("change", () => setTimeout(languageChanged, 0));
  const workspace = document.getElementById("workspace-view");
  if (!workspace) return;
  new MutationObserver(onWorkspace).observe(workspace, { attributes: true, attributeFilter: ["hidden"] });
  // The workspace's own router shows the inbox for a section it does not know; keep it hidden while ours is open.
  const inbox = document.getElementById("inbox-view");
  if (inbox) {
    new MutationObserver(() => { if (active() && el.view && !el.view.hidden) hideOthers(); })
      .observe(inbox, { attributes: true, attributeFilter: ["hidden"] });
  }
  window.addEventListener("hashchange", route);
  onWorkspace();
}

boot();
