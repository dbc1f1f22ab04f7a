// The Reports section (#reports?start=…&end=…&interval=…): headline KPIs with their trend against the previous
// period, one metric over time (split by channel type or another cut) drawn with uPlot, and the agents table.
// Every filter lives in the URL's hash, so a link can be shared. Metric names and definitions (the tooltips)
// come from GET /reports/metrics; agents get their own figures only (the server filters them).
// Loaded by its own <script> tag like supervisor.js: it adds its link to the top bar and shows itself.

import "./texts/reports.js";
import { ApiError, get } from "./api.js";
import { h } from "./dom.js";
import { lang, t } from "./i18n.js";
import uPlot from "../vendor/uplot/uPlot.esm.js";

const SECTION = "reports";
const HEADLINE = ["conversations", "first_response_time", "response_time", "wait_time", "handle_time",
  "resolution_time", "service_level", "sla_compliance", "abandonment", "bot_containment", "csat", "nps"];
const CUTS = ["channel_type", "channel", "team", "queue", "agent", "label", "bot_flow"];
const INTERVALS = ["hour", "day", "week", "month"];
const COLOURS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
const AGENT_METRICS = ["resolutions", "first_response_time", "response_time", "handle_time", "csat", "sla_compliance"];
const PAGES = ["overview", "heatmap", "queues", "bot", "ratings"];
const QUEUE_METRICS = ["conversations", "service_level", "wait_time", "first_response_time", "abandonment"];
const BOT_METRICS = ["conversations", "bot_containment"];
const HEAT_METRICS = ["conversations", "messages_in", "first_response_time", "wait_time"];

const state = { me: null, metrics: new Map(), active: false, chart: null, seq: 0 };
let view = null;

// ---- formatting ---------------------------------------------------------------------------------------------

function number(value, digits = 0) {
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: digits }).format(value);
}

/** "1 h 5 min", "4 min 10 s", "35 s" */
export function humanDuration(seconds) {
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh) return `${number(hh)} ${t("r.unit.h")}${mm ? ` ${mm} ${t("r.unit.min")}` : ""}`;
  if (mm) return `${mm} ${t("r.unit.min")}${ss ? ` ${ss} ${t("r.unit.s")}` : ""}`;
  return `${ss} ${t("r.unit.s")}`;
}

function formatValue(unit, value) {
  if (value === null || value === undefined) return "—";
  if (unit === "seconds") return humanDuration(value);
  if (unit === "percent") return `${number(value, 1)}%`;
  if (unit === "score") return number(value, 2);
  return number(value);
}

function metricTitle(name) {
  const m = state.metrics.get(name);
  return m ? m.title[lang()] || m.title.en : name;
}

function metricDefinition(name) {
  const m = state.metrics.get(name);
  return m ? m.definition[lang()] || m.definition.en : "";
}

// ---- the URL --------------------------------------------------------------------------------------------------

function isoDay(date) {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

function params() {
  const hash = window.location.hash.replace(/^#/, "");
  const query = hash.startsWith(`${SECTION}?`) ? hash.slice(SECTION.length + 1) : "";
  const p = new URLSearchParams(query);
  const today = new Date();
  if (!p.get("end")) p.set("end", isoDay(today));
  if (!p.get("start")) p.set("start", isoDay(new Date(today.getTime() - 29 * 86400000)));
  if (!INTERVALS.includes(p.get("interval"))) p.set("interval", "day");
  if (!p.get("clock")) p.set("clock", "wall");
  if (!p.get("metric")) p.set("metric", "conversations");
  if (p.get("group_by") === null) p.set("group_by", "channel_type");
  if (!PAGES.includes(p.get("page"))) p.set("page", "overview");
  return p;
}

function setParam(name, value) {
  const p = params();
  if (value === "" || value === null) p.delete(name);
  else p.set(name, value);
  if (name === "group_by" && value === "") p.set("group_by", "");
  window.location.hash = `${SECTION}?${p.toString()}`;
}

/** The query the API gets: period, clock and filters (not the screen's own choices). */
function apiQuery(p, extra = {}) {
  const q = new URLSearchParams();
  for (const key of ["start", "end", "tz", "clock", ...CUTS]) if (p.get(key)) q.set(key, p.get(key));
  for (const [key, value] of Object.entries(extra)) if (value !== "" && value !== null) q.set(key, value);
  return q.toString();
}

// ---- rendering ------------------------------------------------------------------------------------------------

function select(label, name, value, options) {
  return h("label", {}, label,
    h("select", { attrs: { name, "aria-label": label }, on: { change: (e) => setParam(name, e.target.value) } },
      ...options.map(([v, text]) => h("option", { attrs: { value: v, selected: v === value ? "selected" : null },
        text }))));
}

function dateInput(label, name, value) {
  return h("label", {}, label, h("input", { attrs: { type: "date", name, value, "aria-label": label },
    on: { change: (e) => e.target.value && setParam(name, e.target.value) } }));
}

function filters(p, channelTypes) {
  return h("form", { class: "reports__filters", on: { submit: (e) => e.preventDefault() } },
    dateInput(t("r.start"), "start", p.get("start")),
    dateInput(t("r.end"), "end", p.get("end")),
    select(t("r.interval"), "interval", p.get("interval"), INTERVALS.map((i) => [i, t(`r.interval.${i}`)])),
    select(t("r.clock"), "clock", p.get("clock"), [["wall", t("r.clock.wall")], ["business", t("r.clock.business")]]),
    select(t("r.channelType"), "channel_type", p.get("channel_type") || "",
      [["", t("r.all")], ...channelTypes.map((c) => [c, c])]));
}

function kpiCard(figure) {
  const m = state.metrics.get(figure.name);
  const better = m ? m.higher_is_better : true;
  let trend = t("r.noPrevious");
  let cls = "";
  if (figure.previous_value !== null && figure.previous_value !== undefined) {
    trend = t("r.previous", { value: formatValue(figure.unit, figure.previous_value) });
    if (figure.change) cls = (figure.change > 0) === better ? "rkpi__trend--better" : "rkpi__trend--worse";
    if (figure.change) trend = `${figure.change > 0 ? "▲" : "▼"} ${trend}`;
  }
  const d = figure.distribution;
  const extra = figure.unit === "seconds" && d.count
    ? ` · median ${humanDuration(d.median)} · p90 ${humanDuration(d.p90)} · n=${number(d.count)}` : "";
  return h("div", { class: "rkpi", dataset: { metric: figure.name, value: figure.value ?? "" },
    attrs: { title: metricDefinition(figure.name) + extra, tabindex: "0" } },
  h("span", { class: "rkpi__label", text: metricTitle(figure.name) }),
  h("span", { class: "rkpi__value", text: formatValue(figure.unit, figure.value) }),
  h("span", { class: ["rkpi__trend", cls], text: trend }));
}

function csvLink(path) {
  return h("a", { class: "btn btn--small", attrs: { href: `/api/v1/reports/${path}`, download: "" }, text: t("r.csv") });
}

function drawChart(box, series, unit) {
  if (state.chart) {
    state.chart.destroy();
    state.chart = null;
  }
  box.replaceChildren();
  if (!series.length || !series[0].points.length) return;
  const xs = series[0].points.map((pt) => new Date(pt.start).getTime() / 1000);
  const data = [xs, ...series.map((s) => s.points.map((pt) => (pt.value === null ? null : pt.value)))];
  const opts = {
    width: Math.max(320, box.clientWidth || 800), height: 280,
    series: [{}, ...series.map((s, i) => ({
      label: s.key === null || s.key === undefined ? t("r.total") : (s.name || String(s.key)),
      stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: false,
      value: (u, v) => (v === null ? "—" : formatValue(unit, v)),
    }))],
    axes: [{}, { values: (u, vals) => vals.map((v) => (unit === "seconds" ? humanDuration(v) : number(v, 1))), size: 70 }],
  };
  state.chart = new uPlot(opts, data, box);
}

function table(headers, rows) {
  return h("table", { class: "rtable" },
    h("thead", {}, h("tr", {}, ...headers.map(([text, title]) => h("th", { text, attrs: { title: title || null } })))),
    h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((c) => h("td", { text: c }))))));
}

function header(p, own) {
  return [
    h("div", { class: "reports__head" }, h("h2", { text: t("r.title") }), own ? h("span", { class: "muted", text: t("r.own") }) : null,
      h("a", { class: "btn btn--small", attrs: { href: `/api/v1/reports/conversations?${apiQuery(p, { format: "csv" })}`,
        download: "" }, text: t("r.exportConversations") })),
    h("nav", { class: "reports__tabs", attrs: { "aria-label": t("r.pages") } }, ...PAGES.map((name) => {
      const q = new URLSearchParams(p);
      q.set("page", name);
      return h("a", { class: "reports__tab", attrs: { href: `#${SECTION}?${q.toString()}`,
        "aria-current": p.get("page") === name ? "page" : null }, dataset: { page: name }, text: t(`r.page.${name}`) });
    })),
  ];
}

function panel(title, csvPath, ...children) {
  return h("section", { class: "rpanel", attrs: { "aria-label": title } },
    h("div", { class: "rpanel__head" }, h("h3", { class: "rpanel__title", text: title }), csvPath ? csvLink(csvPath) : null),
    ...children);
}

/** A figure with its definition as the tooltip; durations and percentages with their median and p90. */
function cell(figure) {
  const d = figure.distribution;
  const extra = d.count && figure.unit === "seconds"
    ? ` · ${t("r.median")} ${humanDuration(d.median)} · p90 ${humanDuration(d.p90)} · n=${number(d.count)}`
    : (d.count ? ` · n=${number(d.count)}` : "");
  return h("td", { dataset: { metric: figure.name, value: figure.value ?? "" },
    attrs: { title: metricDefinition(figure.name) + extra }, text: formatValue(figure.unit, figure.value) });
}

function groupTable(groups, names, firstColumn) {
  return h("table", { class: "rtable" },
    h("thead", {}, h("tr", {}, h("th", { text: firstColumn }),
      ...names.map((n) => h("th", { text: metricTitle(n), attrs: { title: metricDefinition(n) } })),
      ...names.filter((n) => state.metrics.get(n)?.unit === "seconds").flatMap((n) => [
        h("th", { text: `${metricTitle(n)} · ${t("r.median")}`, attrs: { title: metricDefinition(n) } }),
        h("th", { text: `${metricTitle(n)} · p90`, attrs: { title: metricDefinition(n) } })]))),
    h("tbody", {}, ...groups.map((g) => {
      const byName = new Map(g.figures.map((f) => [f.name, f]));
      return h("tr", { dataset: { key: g.key ?? "" } }, h("td", { text: g.name || (g.key === null ? t("r.none") : String(g.key)) }),
        ...names.map((n) => cell(byName.get(n))),
        ...names.filter((n) => state.metrics.get(n)?.unit === "seconds").flatMap((n) => {
          const d = byName.get(n).distribution;
          return [h("td", { text: d.median === null ? "—" : humanDuration(d.median) }),
            h("td", { text: d.p90 === null ? "—" : humanDuration(d.p90) })];
        }));
    })));
}

function countTable(rows, firstColumn, dataName) {
  if (!rows.length) return h("p", { class: "muted", text: t("r.nothing") });
  return h("table", { class: "rtable", dataset: { table: dataName } },
    h("thead", {}, h("tr", {}, h("th", { text: firstColumn }), h("th", { text: t("r.col.count") }))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, h("td", { text: r.name || t("r.none") }),
      h("td", { dataset: { value: r.count }, text: number(r.count) })))));
}

function intentTable(rows) {
  if (!rows.length) return h("p", { class: "muted", text: t("r.nothing") });
  const cell = (v) => h("td", { dataset: { value: v }, text: number(v) });
  return h("table", { class: "rtable", dataset: { table: "intents" } },
    h("caption", { class: "muted", text: t("r.bot.intents.hint") }),
    h("thead", {}, h("tr", {}, ...["r.bot.intent", "r.col.count", "r.bot.contained", "r.bot.handed_off"]
      .map((k) => h("th", { text: t(k) })))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, h("td", { text: r.name }), cell(r.count), cell(r.contained),
      cell(r.handed_off)))));
}

function shell(p) {
  const own = state.me && !["admin", "supervisor"].includes(state.me.role);
  const status = h("p", { class: "muted", attrs: { role: "status" }, text: t("r.loading") });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  error.hidden = true;
  return { own, status, error };
}

function failed(seq, ui, err) {
  if (seq !== state.seq) return;
  ui.status.hidden = true;
  ui.error.textContent = err instanceof ApiError ? err.detail || `${err.status} ${err.code}` : String(err);
  ui.error.hidden = false;
}

function done(ui, empty) {
  ui.status.textContent = empty ? t("r.empty") : "";
  ui.status.hidden = !empty;
}

async function renderHeatmap(seq, p) {
  const ui = shell(p);
  const metric = HEAT_METRICS.includes(p.get("heat")) ? p.get("heat") : "conversations";
  const box = h("div", { class: "rheat" });
  const q = apiQuery(p, { metric });
  view.replaceChildren(...header(p, ui.own), filters(p, channelTypes()), ui.error, ui.status,
    panel(t("r.page.heatmap"), `heatmap?${q}&format=csv`,
      h("div", { class: "rpanel__head" }, select(t("r.metric"), "heat", metric, HEAT_METRICS.map((n) => [n, metricTitle(n)])),
        h("span", { class: "muted", attrs: { title: metricDefinition(metric) }, text: metricDefinition(metric) })), box));
  try {
    const body = await get(`/reports/heatmap?${q}`);
    if (seq !== state.seq || !state.active) return;
    const values = body.cells.map((c) => c.value || 0);
    const max = Math.max(0, ...values);
    const grid = Array.from({ length: 7 }, () => Array(24).fill(null));
    for (const c of body.cells) grid[c.weekday][c.hour] = c;
    const days = Array.from({ length: 7 }, (_, d) => new Intl.DateTimeFormat(lang(), { weekday: "short" })
      .format(new Date(Date.UTC(2024, 0, 1 + d))));
    box.replaceChildren(h("table", { class: "rheat__table" },
      h("thead", {}, h("tr", {}, h("th", {}), ...Array.from({ length: 24 }, (_, hh) => h("th", { text: String(hh) })))),
      h("tbody", {}, ...grid.map((row, d) => h("tr", {}, h("th", { text: days[d] }),
        ...row.map((c) => {
          const v = c.value;
          const share = max && v ? v / max : 0;
          return withVar(h("td", { class: "rheat__cell", dataset: { weekday: c.weekday, hour: c.hour, value: v ?? "" },
            attrs: { title: `${days[d]} ${c.hour}:00 · ${formatValue(body.unit, v)} · n=${number(c.count)}` },
            text: v ? formatValue(body.unit, v) : "" }), "--heat", share.toFixed(3));
        }))))));
    done(ui, !body.cells.some((c) => c.count));
  } catch (err) {
    failed(seq, ui, err);
  }
}

async function renderQueues(seq, p) {
  const ui = shell(p);
  const queues = h("div");
  const teams = h("div");
  const metricQuery = QUEUE_METRICS.map((n) => `metric=${n}`).join("&");
  view.replaceChildren(...header(p, ui.own), filters(p, channelTypes()), ui.error, ui.status,
    panel(t("r.group.queue"), `summary?${apiQuery(p, { group_by: "queue", format: "csv" })}&${metricQuery}`, queues),
    panel(t("r.group.team"), `summary?${apiQuery(p, { group_by: "team", format: "csv" })}&${metricQuery}`, teams));
  try {
    const [byQueue, byTeam] = await Promise.all([
      get(`/reports/summary?${apiQuery(p, { group_by: "queue" })}&${metricQuery}`),
      get(`/reports/summary?${apiQuery(p, { group_by: "team" })}&${metricQuery}`)]);
    if (seq !== state.seq || !state.active) return;
    queues.replaceChildren(groupTable(byQueue.groups, QUEUE_METRICS, t("r.group.queue")));
    teams.replaceChildren(groupTable(byTeam.groups, QUEUE_METRICS, t("r.group.team")));
    done(ui, !byQueue.groups.length);
  } catch (err) {
    failed(seq, ui, err);
  }
}

async function renderBot(seq, p) {
  const ui = shell(p);
  const kpis = h("div", { class: "rkpis" });
  const flows = h("div");
  const reasons = h("div");
  const choices = h("div");
  const intents = h("div");
  const metricQuery = BOT_METRICS.map((n) => `metric=${n}`).join("&");
  view.replaceChildren(...header(p, ui.own), filters(p, channelTypes()), ui.error, ui.status,
    panel(t("r.bot.containment"), `summary?${apiQuery(p, { group_by: "bot_flow", format: "csv" })}&${metricQuery}`,
      kpis, flows),
    panel(t("r.bot.reasons"), `bot?${apiQuery(p, { format: "csv" })}`, reasons),
    panel(t("r.bot.choices"), null, choices),
    panel(t("r.bot.intents"), null, intents));
  try {
    const [summary, bot] = await Promise.all([
      get(`/reports/summary?${apiQuery(p, { group_by: "bot_flow" })}&${metricQuery}`),
      get(`/reports/bot?${apiQuery(p)}`)]);
    if (seq !== state.seq || !state.active) return;
    kpis.replaceChildren(...summary.figures.filter((f) => f.name === "bot_containment").map(kpiCard));
    flows.replaceChildren(groupTable(summary.groups.filter((g) => g.key !== null), BOT_METRICS, t("r.group.bot_flow")));
    reasons.replaceChildren(countTable(bot.handoff_reasons, t("r.bot.reason"), "reasons"));
    choices.replaceChildren(countTable(bot.menu_choices, t("r.bot.choice"), "choices"));
    intents.replaceChildren(intentTable(bot.top_intents));
    done(ui, false);
  } catch (err) {
    failed(seq, ui, err);
  }
}

async function renderRatings(seq, p) {
  const ui = shell(p);
  const kpis = h("div", { class: "rkpis" });
  const dist = h("div", { class: "rdist" });
  const comments = h("div");
  view.replaceChildren(...header(p, ui.own), filters(p, channelTypes()), ui.error, ui.status,
    panel(t("r.ratings.distribution"), `ratings?${apiQuery(p, { format: "csv" })}`, kpis, dist),
    panel(t("r.ratings.comments"), null, comments));
  try {
    const [summary, ratings] = await Promise.all([
      get(`/reports/summary?${apiQuery(p)}&metric=csat&metric=csat_score&metric=nps`),
      get(`/reports/ratings?${apiQuery(p)}`)]);
    if (seq !== state.seq || !state.active) return;
    kpis.replaceChildren(...summary.figures.map(kpiCard));
    const parts = [];
    for (const scale of ["csat", "nps"]) {
      const rows = ratings.distribution.filter((d) => d.scale === scale);
      const total = rows.reduce((a, d) => a + d.count, 0);
      if (!total) continue;
      const max = Math.max(...rows.map((d) => d.count));
      parts.push(h("table", { class: "rtable rdist__table", dataset: { scale } },
        h("caption", { text: t(`r.ratings.${scale}`), attrs: { title: metricDefinition(scale) } }),
        h("thead", {}, h("tr", {}, h("th", { text: t("r.ratings.score") }), h("th", { text: t("r.col.count") }),
          h("th", { text: t("r.ratings.share") }))),
        h("tbody", {}, ...rows.map((d) => h("tr", { dataset: { score: d.score, count: d.count } },
          h("td", { text: String(d.score) }), h("td", { text: number(d.count) }),
          h("td", {}, withVar(h("span", { class: "rdist__bar" }), "--share", max ? (d.count / max).toFixed(3) : "0"),
            h("span", { text: `${number((100 * d.count) / total, 1)}%` })))))));
    }
    dist.replaceChildren(...(parts.length ? parts : [h("p", { class: "muted", text: t("r.nothing") })]));
    comments.replaceChildren(ratings.comments.length
      ? h("ul", { class: "rcomments" }, ...ratings.comments.map((c) => h("li", { class: "rcomment",
        dataset: { conversation: c.conversation_id } },
      h("a", { attrs: { href: `#conversation/${c.conversation_id}` }, text: `#${c.conversation_id}` }),
      h("span", { class: "rcomment__score", text: `${c.scale.toUpperCase()} ${c.score}` }),
      c.agent ? h("span", { class: "muted", text: c.agent }) : null,
      h("span", { class: "muted", text: c.at ? new Date(c.at).toLocaleString(lang()) : "" }),
      h("q", { class: "rcomment__text", text: c.comment }))))
      : h("p", { class: "muted", text: t("r.nothing") }));
    done(ui, !ratings.distribution.some((d) => d.count));
  } catch (err) {
    failed(seq, ui, err);
  }
}

/** A CSS custom property on an element (through the CSSOM: inline style attributes are not used). */
function withVar(el, name, value) {
  el.style.setProperty(name, value);
  return el;
}

function channelTypes() {
  return [...new Set((state.channels || []).map((c) => c.type))].sort();
}

async function render() {
  const seq = ++state.seq;
  const p = params();
  const page = p.get("page");
  if (page === "heatmap") return renderHeatmap(seq, p);
  if (page === "queues") return renderQueues(seq, p);
  if (page === "bot") return renderBot(seq, p);
  if (page === "ratings") return renderRatings(seq, p);
  return renderOverview(seq, p);
}

async function renderOverview(seq, p) {
  const own = state.me && !["admin", "supervisor"].includes(state.me.role);
  const status = h("p", { class: "muted", attrs: { role: "status" }, text: t("r.loading") });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  error.hidden = true;
  const kpis = h("div", { class: "rkpis" });
  const chartBox = h("div", { class: "rchart" });
  const agents = h("div");
  const metricChoices = [...state.metrics.values()].filter((m) => m.in_series).map((m) => [m.name, metricTitle(m.name)]);
  const groupChoices = [["", t("r.group.none")], ...CUTS.map((c) => [c, t(`r.group.${c}`)])];
  const channelTypes = [...new Set((state.channels || []).map((c) => c.type))].sort();
  const metric = p.get("metric");
  const groupBy = p.get("group_by");
  const seriesQuery = apiQuery(p, { metric, interval: p.get("interval"), group_by: groupBy });
  view.replaceChildren(
    ...header(p, own),
    filters(p, channelTypes), error, status,
    h("section", { class: "rpanel", attrs: { "aria-label": t("r.overview") } },
      h("div", { class: "rpanel__head" }, h("h3", { class: "rpanel__title", text: t("r.overview") }),
        csvLink(`summary?${apiQuery(p, { format: "csv" })}`)), kpis),
    h("section", { class: "rpanel", attrs: { "aria-label": t("r.traffic") } },
      h("div", { class: "rpanel__head" }, h("h3", { class: "rpanel__title", text: t("r.traffic") }),
        select(t("r.metric"), "metric", metric, metricChoices),
        select(t("r.groupBy"), "group_by", groupBy, groupChoices),
        csvLink(`timeseries?${seriesQuery}&format=csv`)), chartBox),
    h("section", { class: "rpanel", attrs: { "aria-label": t("r.agents") } },
      h("div", { class: "rpanel__head" }, h("h3", { class: "rpanel__title", text: t("r.agents") }),
        csvLink(`agents?${apiQuery(p, { format: "csv" })}`)), agents));
  try {
    const [summary, ts, people] = await Promise.all([
      get(`/reports/summary?${apiQuery(p)}`),
      get(`/reports/timeseries?${seriesQuery}`),
      get(`/reports/agents?${apiQuery(p)}`),
    ]);
    if (seq !== state.seq || !state.active) return;
    const figures = new Map(summary.figures.map((f) => [f.name, f]));
    kpis.replaceChildren(...HEADLINE.filter((n) => figures.has(n)).map((n) => kpiCard(figures.get(n))));
    const total = figures.get("conversations");
    status.textContent = total && total.value ? "" : t("r.empty");
    status.hidden = Boolean(total && total.value);
    drawChart(chartBox, ts.series, ts.unit);
    const units = new Map([...state.metrics.values()].map((m) => [m.name, m.unit]));
    agents.replaceChildren(table(
      [[t("r.col.agent")], ...AGENT_METRICS.map((n) => [metricTitle(n), metricDefinition(n)]),
        [t("r.col.occupancy"), metricDefinition("occupancy")]],
      people.items.map((a) => [a.name, ...a.figures.map((f) => formatValue(units.get(f.name), f.value)),
        formatValue("percent", a.occupancy)])));
  } catch (err) {
    if (seq !== state.seq) return;
    status.hidden = true;
    error.textContent = err instanceof ApiError ? err.detail || `${err.status} ${err.code}` : String(err);
    error.hidden = false;
  }
}

// ---- section routing ------------------------------------------------------------------------------------------

function ensureView() {
  if (view) return;
  view = h("section", { class: "reports", attrs: { id: "reports-view" } });
  view.hidden = true;
  document.getElementById("workspace-view").append(view);
}

function addNavLink() {
  const nav = document.getElementById("main-nav");
  if (!nav || nav.querySelector("[data-reports-section]")) return;
  nav.append(h("a", { class: "mainnav__link", attrs: { href: `#${SECTION}` }, dataset: { reportsSection: SECTION },
    text: t("r.nav") }));
  nav.hidden = false;
}

async function route() {
  const hash = window.location.hash.replace(/^#/, "");
  const active = Boolean(state.me) && (hash === SECTION || hash.startsWith(`${SECTION}?`));
  state.active = active;
  const link = document.querySelector("#main-nav [data-reports-section]");
  if (link) {
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!view) return;
  view.hidden = !active;
  if (!active) {
    if (state.chart) state.chart.destroy();
    state.chart = null;
    return;
  }
  for (const id of ["inbox-view", "admin-view", "live-view"]) {
    const other = document.getElementById(id);
    if (other) other.hidden = true;
  }
  for (const other of document.querySelectorAll("#main-nav .mainnav__link:not([data-reports-section])")) {
    other.removeAttribute("aria-current");
  }
  if (!state.metrics.size) {
    const [list, channels] = await Promise.allSettled([get("/reports/metrics"), get("/channels")]);
    if (list.status === "fulfilled") for (const m of list.value.items) state.metrics.set(m.name, m);
    state.channels = channels.status === "fulfilled" && Array.isArray(channels.value) ? channels.value : [];
  }
  if (state.active) render();
}

async function onWorkspace() {
  const workspace = document.getElementById("workspace-view");
  if (!workspace || workspace.hidden) {
    state.me = null;
    state.active = false;
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
  // The top bar is the supervisors' and administrators' (agents have none); agents open #reports by its link.
  if (["admin", "supervisor"].includes(state.me.role)) addNavLink();
  route();
}

function boot() {
  document.head.append(h("link", { attrs: { rel: "stylesheet", href: "/static/vendor/uplot/uPlot.min.css" } }),
    h("link", { attrs: { rel: "stylesheet", href: "/static/css/reports.css" } }));
  const select = document.getElementById("lang-select");
  if (select) {
    select.addEventListener("change", () => setTimeout(() => {
      const link = document.querySelector("#main-nav [data-reports-section]");
      if (link) link.textContent = t("r.nav");
      if (state.active) render();
    }, 0));
  }
  const workspace = document.getElementById("workspace-view");
  if (!workspace) return;
  new MutationObserver(onWorkspace).observe(workspace, { attributes: true, attributeFilter: ["hidden"] });
  window.addEventListener("hashchange", route);
  onWorkspace();
}

boot();
