// Campaigns (#campaigns, supervisors and administrators): save a segment while watching its audience count,
// write a campaign (text per language, channel strategy, purpose, quiet hours, throttle), start, pause, resume
// or cancel it and watch its stats. A draft can be opened in the same form and changed (PATCH) until it starts;
// a template can replace the texts (choosing one shows its parameters), and a refusal that names a field is
// shown beside it. Loaded by its own <script> tag like forecast.js: it adds its link to the top
// bar and shows its section itself. Figures come from /api/v1/segments and /api/v1/campaigns as they are.

import "./texts/campaigns.js";
import "./texts/templates.js";
import { ApiError, get, patch, post } from "./api.js";
import { h } from "./dom.js";
import { lang, t } from "./i18n.js";

const SECTION = "campaigns";
const REFRESH_MS = 3000;
const STATS = ["targeted", "skipped", "sent", "delivered", "read", "failed", "replied"];

const state = { me: null, segments: [], campaigns: [], channels: [], templates: [], editing: null, countSeq: 0,
  timer: null };
const el = {};

const isSupervisor = () => Boolean(state.me && ["admin", "supervisor"].includes(state.me.role));
const active = () => isSupervisor() && window.location.hash.replace(/^#/, "") === SECTION;
const num = (x) => new Intl.NumberFormat(lang()).format(x || 0);

function failed(err) {
  el.error.textContent = err instanceof ApiError
    ? (err.sentences && err.sentences[lang()]) || err.detail || `${err.status} ${err.code}` : String(err);
  el.error.hidden = false;
  el.notice.hidden = true;
  const named = err instanceof ApiError && err.errors.length ? err.errors[0] : null;
  const box = named && el.campForm && el.campForm.parentElement.querySelector(
    `[data-path="${CSS.escape(String(named.field).split(".")[0])}"]`);
  if (box) {
    box.classList.add("field--invalid");
    const slot = box.querySelector(".field__error");
    slot.textContent = err.code === "validation_failed" ? named.message : el.error.textContent;
    slot.hidden = false;
  }
}

function clearErrors() {
  if (!el.campForm) return;
  for (const box of el.campForm.parentElement.querySelectorAll(".field--invalid")) box.classList.remove("field--invalid");
  for (const slot of el.campForm.parentElement.querySelectorAll(".field__error")) slot.hidden = true;
}

function told(text) {
  el.notice.textContent = text;
  el.notice.hidden = false;
  el.error.hidden = true;
}

// ---- the section --------------------------------------------------------------------------------------------

function ensureView() {
  if (el.view) return;
  el.view = h("section", { class: "cmp", attrs: { id: "campaigns-view", "aria-labelledby": "cmp-title" } });
  el.view.hidden = true;
  document.getElementById("workspace-view").append(el.view);
}

function addNavLink() {
  const nav = document.getElementById("main-nav");
  if (!nav || nav.querySelector("[data-campaigns-section]")) return;
  nav.append(h("a", { class: "mainnav__link", attrs: { href: `#${SECTION}` }, dataset: { campaignsSection: SECTION },
    text: t("cmp.nav") }));
  nav.hidden = false;
}

function hideOthers() {
  for (const id of ["inbox-view", "admin-view", "live-view", "forecast-view", "reports-view"]) {
    const other = document.getElementById(id);
    if (other && !other.hidden) other.hidden = true;
  }
}

function route() {
  if (!el.view) return;
  const on = active();
  const link = document.querySelector("#main-nav [data-campaigns-section]");
  if (link) {
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  el.view.hidden = !on;
  clearInterval(state.timer);
  state.timer = null;
  if (!on) return;
  hideOthers();
  if (!el.segForm) build();
  loadAll();
  state.timer = setInterval(() => { if (active()) loadCampaigns(); }, REFRESH_MS);
}

// ---- forms --------------------------------------------------------------------------------------------------

function field(label, control, cls = "field", path = "") {
  return h("label", { class: cls, dataset: path ? { path } : {} }, h("span", { class: "field__label", text: label }),
    control, path ? h("span", { class: "field__error", attrs: { role: "alert" }, hidden: true }) : null);
}

function select(id, options, onChange) {
  return h("select", { attrs: { id }, on: onChange ? { change: onChange } : {} },
    options.map(([value, label]) => h("option", { attrs: { value }, text: label })));
}

function channelTypes() {
  return [...new Set(state.channels.map((c) => c.type))];
}

function build() {
  const recount = () => countAudience();
  el.segForm = h("form", { class: "cmp__form", attrs: { id: "cmp-seg-form", novalidate: true },
    on: { submit: (e) => { e.preventDefault(); saveSegment(); }, input: recount, change: recount } },
  field(t("cmp.seg.name"), h("input", { attrs: { id: "cmp-seg-name", maxlength: 200, required: true } })),
  field(t("cmp.seg.attrKey"), h("input", { attrs: { id: "cmp-seg-attr-key", maxlength: 60 } })),
  field(t("cmp.seg.attrValue"), h("input", { attrs: { id: "cmp-seg-attr-value", maxlength: 200 } })),
  field(t("cmp.seg.language"), select("cmp-seg-language", [["", t("cmp.any")], ["en", "English"], ["ru", "Русский"]])),
  field(t("cmp.seg.consent"), select("cmp-seg-consent", [["", t("cmp.any")], ["marketing", t("cmp.consent.marketing")],
    ["service", t("cmp.consent.service")]])),
  field(t("cmp.seg.channel"), el.segChannel = select("cmp-seg-channel", [["", t("cmp.any")]])),
  field(t("cmp.seg.preferred"), el.segPreferred = select("cmp-seg-preferred", [["", t("cmp.any")]])),
  field(t("cmp.seg.within"), h("input", { attrs: { id: "cmp-seg-within", type: "number", min: 1, max: 3650 } })),
  field(t("cmp.seg.label"), h("input", { attrs: { id: "cmp-seg-label", maxlength: 50 } })),
  field(t("cmp.seg.manager"), h("input", { attrs: { id: "cmp-seg-manager", type: "number", min: 1 } })),
  el.count = h("output", { class: "cmp__count", attrs: { id: "cmp-audience", "aria-live": "polite" } }),
  h("button", { class: "btn btn--primary", attrs: { id: "cmp-seg-save", type: "submit" }, text: t("cmp.seg.save") }));

  el.campForm = h("form", { class: "cmp__form", attrs: { id: "cmp-form", novalidate: true },
    on: { submit: (e) => { e.preventDefault(); saveCampaign(); } } },
  field(t("cmp.c.name"), h("input", { attrs: { id: "cmp-name", maxlength: 200, required: true } }), "field", "name"),
  field(t("tpl.pick"), el.template = select("cmp-template", [["", t("tpl.pickNone")]], fillParams), "field",
    "template"),
  el.params = h("fieldset", { class: "cmp__params", attrs: { id: "cmp-params" }, dataset: { path: "parameters" },
    hidden: true }),
  field(t("cmp.c.textEn"), h("textarea", { attrs: { id: "cmp-text-en", maxlength: 4096 } }), "field field--text",
    "texts"),
  field(t("cmp.c.textRu"), h("textarea", { attrs: { id: "cmp-text-ru", maxlength: 4096 } }), "field field--text"),
  field(t("cmp.c.channel"), el.channel = select("cmp-channel", [["preferred", t("cmp.c.preferred")]]), "field",
    "channel"),
  field(t("cmp.c.purpose"), select("cmp-purpose", [["marketing", t("cmp.purpose.marketing")],
    ["service", t("cmp.purpose.service")]]), "field", "purpose"),
  field(t("cmp.c.startsAt"), h("input", { attrs: { id: "cmp-starts-at", type: "datetime-local" } }), "field",
    "starts_at"),
  field(t("cmp.c.quietFrom"), h("input", { attrs: { id: "cmp-quiet-from", type: "number", min: 0, max: 23, value: 21 } }),
    "field", "quiet_from"),
  field(t("cmp.c.quietTo"), h("input", { attrs: { id: "cmp-quiet-to", type: "number", min: 0, max: 23, value: 9 } }),
    "field", "quiet_to"),
  field(t("cmp.c.timezone"), h("input", { attrs: { id: "cmp-timezone", maxlength: 64,
    value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" } }), "field", "timezone"),
  field(t("cmp.c.perMinute"), h("input", { attrs: { id: "cmp-per-minute", type: "number", min: 1, max: 100000, value: 600 } }),
    "field", "per_minute"),
  el.create = h("button", { class: "btn btn--primary", attrs: { id: "cmp-create", type: "submit" }, text: t("cmp.c.create") }),
  el.stopEdit = h("button", { class: "btn", attrs: { id: "cmp-edit-cancel", type: "button" }, text: t("cmp.c.editCancel"),
    hidden: true, on: { click: () => { resetForm(); el.notice.hidden = true; el.error.hidden = true; } } }));

  el.view.replaceChildren(
    h("div", { class: "fc__head" }, h("h2", { attrs: { id: "cmp-title" }, text: t("cmp.title") })),
    el.error = h("p", { class: "form-error", attrs: { role: "alert", id: "cmp-error" } }),
    el.notice = h("p", { class: "muted", attrs: { role: "status", id: "cmp-notice" } }),
    h("section", { class: "qpanel" }, h("h3", { class: "qpanel__title", text: t("cmp.seg.title") }), el.segForm),
    h("section", { class: "qpanel" }, el.formTitle = h("h3", { class: "qpanel__title", attrs: { id: "cmp-form-title" },
      text: t("cmp.c.title") }),
      h("p", { class: "muted", text: t("cmp.c.hint") }),
      h("fieldset", { class: "cmp__segments", attrs: { id: "cmp-segments" }, dataset: { path: "segment_ids" } },
        h("legend", { text: t("cmp.seg.list") }), el.segList = h("div", { class: "cmp__segments" }),
        h("span", { class: "field__error", attrs: { role: "alert" }, hidden: true })),
      el.campForm),
    h("section", { class: "qpanel" }, h("h3", { class: "qpanel__title", text: t("cmp.list") }),
      el.list = h("div", { attrs: { id: "cmp-list" } })));
  el.error.hidden = true;
  el.notice.hidden = true;
  fillChannels();
  fillTemplates();
  renderSegments();
  renderCampaigns();
}

// ---- the template picker ------------------------------------------------------------------------------------

function templateNames() {
  const names = new Map();
  for (const x of state.templates) names.set(x.name, [...(names.get(x.name) || []), x.language]);
  return names;
}

function fillTemplates() {
  if (!el.template) return;
  const keep = el.template.value;
  el.template.replaceChildren(h("option", { attrs: { value: "" }, text: t("tpl.pickNone") }),
    ...[...templateNames()].map(([name, languages]) => h("option", { attrs: { value: name },
      text: `${name} (${languages.join(", ")})` })));
  if ([...el.template.options].some((o) => o.value === keep)) el.template.value = keep;
}

/** The chosen template's parameters as a form (values kept when the same names come back). */
function fillParams(values) {
  const before = values && typeof values === "object" && !(values instanceof Event) ? values : paramValues();
  const tpl = state.templates.find((x) => x.name === el.template.value);
  el.params.hidden = !tpl;
  el.params.replaceChildren(...(tpl ? [h("legend", { text: t("tpl.params") }),
    ...tpl.parameters.map((name) => field(name, h("input", { attrs: { id: `cmp-param-${name}`, maxlength: 1000 },
      dataset: { param: name }, value: before[name] || "" }))),
    h("span", { class: "field__error", attrs: { role: "alert", id: "cmp-params-error" }, hidden: true })] : []));
}

function paramValues() {
  return Object.fromEntries([...el.params.querySelectorAll("[data-param]")].map((i) => [i.dataset.param, i.value]));
}

function fillChannels() {
  if (!el.segChannel) return;
  const types = channelTypes();
  el.segChannel.replaceChildren(h("option", { attrs: { value: "" }, text: t("cmp.any") }),
    ...types.map((x) => h("option", { attrs: { value: x }, text: x })));
  el.segPreferred.replaceChildren(h("option", { attrs: { value: "" }, text: t("cmp.any") }),
    ...types.map((x) => h("option", { attrs: { value: x }, text: x })));
  el.channel.replaceChildren(h("option", { attrs: { value: "preferred" }, text: t("cmp.c.preferred") }),
    ...state.channels.map((c) => h("option", { attrs: { value: String(c.id) }, text: `${c.name} (${c.type})` })));
}

function value(id) {
  return document.getElementById(id).value.trim();
}

function rules() {
  const r = {};
  const key = value("cmp-seg-attr-key");
  if (key) r.attributes = { [key]: value("cmp-seg-attr-value") };
  for (const [id, name] of [["cmp-seg-language", "language"], ["cmp-seg-consent", "consent"],
    ["cmp-seg-preferred", "preferred_channel"]]) {
    if (value(id)) r[name] = value(id);
  }
  if (value("cmp-seg-channel")) r.channel_types = [value("cmp-seg-channel")];
  if (value("cmp-seg-label")) r.labels = [value("cmp-seg-label")];
  if (value("cmp-seg-within")) r.last_contact_within_days = Number(value("cmp-seg-within"));
  if (value("cmp-seg-manager")) r.manager_id = Number(value("cmp-seg-manager"));
  return r;
}

async function countAudience() {
  const seq = ++state.countSeq;
  try {
    const got = await post("/segments/count", rules());
    if (seq === state.countSeq) el.count.textContent = t("cmp.seg.count", { count: num(got.count) });
  } catch (err) {
    if (seq === state.countSeq) el.count.textContent = "";
  }
}

async function saveSegment() {
  try {
    const made = await post("/segments", { name: value("cmp-seg-name"), rules: rules() });
    told(t("cmp.seg.saved", { name: made.name }));
    await loadSegments(made.id);
  } catch (err) {
    failed(err);
  }
}

function setValue(id, v) {
  document.getElementById(id).value = v === null || v === undefined ? "" : String(v);
}

/** A moment as the local date and time a datetime-local input shows, and back. */
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function campaignBody() {
  const texts = {};
  if (value("cmp-text-en")) texts.en = value("cmp-text-en");
  if (value("cmp-text-ru")) texts.ru = value("cmp-text-ru");
  const startsAt = value("cmp-starts-at");
  return {
    name: value("cmp-name"), segment_ids: [...el.segList.querySelectorAll("input:checked")].map((x) => Number(x.value)),
    texts, template: el.template.value || null, parameters: el.template.value ? paramValues() : {},
    channel: value("cmp-channel"), purpose: value("cmp-purpose"),
    starts_at: startsAt ? new Date(startsAt).toISOString() : null, quiet_from: Number(value("cmp-quiet-from")),
    quiet_to: Number(value("cmp-quiet-to")), timezone: value("cmp-timezone") || "UTC",
    per_minute: Number(value("cmp-per-minute") || 600),
  };
}

async function saveCampaign() {
  clearErrors();
  const body = campaignBody();
  if (!body.segment_ids.length) {
    failed(t("cmp.c.pickSegment"));
    return;
  }
  try {
    if (state.editing) {
      const saved = await patch(`/campaigns/${state.editing}`, body);
      resetForm();
      told(t("cmp.c.saved", { name: saved.name }));
    } else {
      const made = await post("/campaigns", body);
      told(t("cmp.c.created", { name: made.name }));
    }
    await loadCampaigns();
  } catch (err) {
    failed(err);
  }
}

/** Open a draft in the form: every field shows its value; saving changes it instead of creating one. */
function editDraft(c) {
  clearErrors();
  state.editing = c.id;
  setValue("cmp-name", c.name);
  setValue("cmp-text-en", c.texts.en);
  setValue("cmp-text-ru", c.texts.ru);
  if (c.template && ![...el.template.options].some((o) => o.value === c.template)) {
    el.template.append(h("option", { attrs: { value: c.template }, text: c.template }));
  }
  el.template.value = c.template || "";
  fillParams(c.parameters || {});
  if (![...el.channel.options].some((o) => o.value === c.channel)) {
    el.channel.append(h("option", { attrs: { value: c.channel }, text: c.channel }));
  }
  setValue("cmp-channel", c.channel);
  setValue("cmp-purpose", c.purpose);
  setValue("cmp-starts-at", localInput(c.starts_at));
  setValue("cmp-quiet-from", c.quiet_from);
  setValue("cmp-quiet-to", c.quiet_to);
  setValue("cmp-timezone", c.timezone);
  setValue("cmp-per-minute", c.per_minute);
  for (const box of el.segList.querySelectorAll("input[type=checkbox]")) {
    box.checked = c.segment_ids.includes(Number(box.value));
  }
  el.formTitle.textContent = t("cmp.c.editTitle", { name: c.name });
  el.create.textContent = t("cmp.c.save");
  el.stopEdit.hidden = false;
  el.error.hidden = true;
  el.notice.hidden = true;
  document.getElementById("cmp-name").focus();
}

function resetForm() {
  state.editing = null;
  clearErrors();
  el.campForm.reset();
  fillParams({});
  el.formTitle.textContent = t("cmp.c.title");
  el.create.textContent = t("cmp.c.create");
  el.stopEdit.hidden = true;
}

async function steer(campaign, action) {
  if (action === "cancel" && !window.confirm(t("cmp.cancelConfirm", { name: campaign.name }))) return;
  try {
    await post(`/campaigns/${campaign.id}/${action}`);
    el.error.hidden = true;
    await loadCampaigns();
  } catch (err) {
    failed(err);
  }
}

// ---- lists --------------------------------------------------------------------------------------------------

function renderSegments(checkedId) {
  if (!el.segList) return;
  const checked = new Set([...el.segList.querySelectorAll("input:checked")].map((x) => Number(x.value)));
  if (checkedId) checked.add(checkedId);
  el.segList.replaceChildren(...(state.segments.length ? state.segments.map((s) => h("label", {},
    h("input", { attrs: { type: "checkbox", value: s.id, checked: checked.has(s.id) }, dataset: { segment: s.name } }),
    ` ${t("cmp.seg.item", { name: s.name, count: num(s.count) })}`)) : [h("span", { class: "muted", text: t("cmp.seg.none") })]));
}

function actions(c) {
  const buttons = { draft: ["edit", "start", "cancel"], running: ["pause", "cancel"], paused: ["resume", "cancel"] }[c.status] || [];
  return h("div", { class: "cmp__actions" }, buttons.map((a) => h("button", {
    class: a === "start" || a === "resume" ? "btn btn--primary" : "btn", dataset: { action: a },
    attrs: { type: "button" }, text: t(`cmp.${a}`), on: { click: () => (a === "edit" ? editDraft(c) : steer(c, a)) } })));
}

function skippedText(stats) {
  const parts = Object.entries(stats.skipped_reasons || {}).map(([k, n]) => `${t(`cmp.reason.${k}`)}: ${num(n)}`);
  return parts.length ? `${num(stats.skipped)} (${parts.join(", ")})` : num(stats.skipped);
}

function renderCampaigns() {
  if (!el.list) return;
  if (!state.campaigns.length) {
    el.list.replaceChildren(h("p", { class: "muted", text: t("cmp.none") }));
    return;
  }
  el.list.replaceChildren(h("table", { class: "qtable", attrs: { id: "cmp-table" } },
    h("thead", {}, h("tr", {}, ["name", "status", ...STATS, "actions"].map((k) => h("th", { text: t(`cmp.col.${k}`) })))),
    h("tbody", {}, state.campaigns.map((c) => h("tr", { dataset: { campaign: c.id, status: c.status } },
      h("td", { text: c.name }), h("td", { dataset: { stat: "status" }, text: t(`cmp.status.${c.status}`) }),
      STATS.map((k) => h("td", { dataset: { stat: k }, text: k === "skipped" ? skippedText(c.stats) : num(c.stats[k]) })),
      h("td", {}, actions(c)))))));
}

async function loadSegments(checkedId) {
  try {
    state.segments = (await get("/segments")).items;
    renderSegments(checkedId);
  } catch (err) {
    failed(err);
  }
}

async function loadCampaigns() {
  try {
    state.campaigns = (await get("/campaigns")).items;
    renderCampaigns();
  } catch (err) {
    failed(err);
  }
}

async function loadAll() {
  try {
    const got = await get("/channels");
    state.channels = (Array.isArray(got) ? got : got.items || []).filter((c) => c.enabled !== false);
  } catch {
    state.channels = [];
  }
  try {
    state.templates = (await get("/message-templates")).items;
  } catch {
    state.templates = [];
  }
  fillChannels();
  fillTemplates();
  await Promise.all([loadSegments(), loadCampaigns(), countAudience()]);
}

// ---- start --------------------------------------------------------------------------------------------------

async function onWorkspace() {
  const workspace = document.getElementById("workspace-view");
  if (!workspace || workspace.hidden) {
    state.me = null;
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
  const link = document.querySelector("#main-nav [data-campaigns-section]");
  if (link) link.textContent = t("cmp.nav");
  if (!el.segForm) return;
  el.segForm = null;
  state.editing = null;
  build();
  if (active()) loadAll();
}

function boot() {
  document.head.append(h("link", { attrs: { rel: "stylesheet", href: "/static/css/campaigns.css" } }));
  const langSelect = document.getElementById("lang-select");
  if (langSelect) langSelect.addEventListener("change", () => setTimeout(languageChanged, 0));
  const workspace = document.getElementById("workspace-view");
  if (!workspace) return;
  new MutationObserver(onWorkspace).observe(workspace, { attributes: true, attributeFilter: ["hidden"] });
  const inbox = document.getElementById("inbox-view");
  if (inbox) {
    new MutationObserver(() => { if (active() && el.view && !el.view.hidden) hideOthers(); })
      .observe(inbox, { attributes: true, attributeFilter: ["hidden"] });
  }
  window.addEventListener("hashchange", route);
  onWorkspace();
}

boot();
