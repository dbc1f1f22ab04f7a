// Quality settings for supervisors (#quality): SLA policies, alert rules per team (who hears of what, by the
// workspace, email and Telegram), communication standards, and the rating question. Plain forms over the
// /api/v1/quality endpoints; every value shown goes through textContent.

import "./texts/quality.js";
import { api, get, post } from "./api.js";
import { h } from "./dom.js";
import { durationValue, formatDuration, parseDuration } from "./duration.js";
import { t } from "./i18n.js";

const KINDS = ["sla.warning", "sla.breach", "standard.violation", "csat.negative"];
let ctx = { root: null, onError: () => {} };
// What the last save said, shown again under its form once the screen is drawn anew with the saved values.
let pending = null; // {form: "policies"|"rules"|"standards"|"csat", text}
const editing = { policy: null, rule: null }; // the row being edited (its form PATCHes it) or null for a new one

class InvalidDuration extends Error {}

/** Seconds from a duration field ("1 h 30 min"); null when empty; refuses text that is no duration. */
function seconds(inputEl) {
  const value = parseDuration(inputEl.value);
  if (Number.isNaN(value)) {
    inputEl.setAttribute("aria-invalid", "true");
    inputEl.focus();
    throw new InvalidDuration(t("dur.invalid"));
  }
  inputEl.removeAttribute("aria-invalid");
  return value;
}

function durationInput(value, attrs = {}) {
  return input({ value: durationValue(value), placeholder: t("dur.hint"), autocomplete: "off", ...attrs });
}

const lines = (text) => text.split("\n").map((x) => x.trim()).filter(Boolean);
const csv = (text) => text.split(",").map((x) => x.trim()).filter(Boolean);
const num = (value) => (value === "" ? null : Number(value));

function field(label, input) {
  return h("label", { class: "field" }, h("span", { class: "field__label", text: label }), input);
}

function check(label, input) {
  return h("label", { class: "toggle" }, input, h("span", { text: label }));
}

function input(attrs = {}) {
  return h("input", { attrs: { type: "text", ...attrs } });
}

function note(form, text, kind = "ok") {
  const old = form.querySelector(".qnote");
  if (old) old.remove();
  form.append(h("p", { class: ["qnote", kind === "ok" ? "qnote--ok" : "form-error"], text }));
}

async function saving(form, fn) {
  try {
    await fn();
    pending = { form: form.dataset.form, text: t("q.admin.saved") };
    editing.policy = form.dataset.form === "policies" ? null : editing.policy;
    editing.rule = form.dataset.form === "rules" ? null : editing.rule;
    await showQualityAdmin(ctx.root, ctx);
  } catch (err) {
    note(form, err.detail || err.message || String(err), "error");
  }
}

export async function showQualityAdmin(root, options = {}) {
  ctx = { root, onError: options.onError || (() => {}) };
  let data;
  try {
    const [policies, rules, standards, csat, teams, queues] = await Promise.all([
      get("/quality/policies"), get("/quality/rules"), get("/quality/standards"), get("/quality/csat"),
      get("/teams"), get("/queues")]);
    data = { policies, rules, standards, csat, teams, queues };
  } catch (err) {
    ctx.onError(err);
    return;
  }
  if (window.location.hash !== "#quality") return;
  root.replaceChildren(h("div", { class: "admin__page" },
    h("div", { class: "qlive__head" }, h("h2", { class: "qlive__title", text: t("q.admin.title") })),
    policiesSection(data), rulesSection(data), standardsSection(data), csatSection(data)));
  if (pending) {
    const form = root.querySelector(`form[data-form="${pending.form}"]`);
    if (form) note(form, pending.text);
    pending = null;
  }
}

function section(title, ...children) {
  return h("section", { class: "qpanel" }, h("h3", { class: "qpanel__title", text: title }), ...children);
}

function policiesSection({ policies, queues }) {
  const queueName = new Map(queues.map((q) => [q.id, q.name]));
  const current = policies.find((p) => p.id === editing.policy) || null;
  const rows = policies.map((p) => h("tr", { dataset: { policyId: p.id } },
    h("td", { text: p.name }),
    h("td", { class: "qdurations", text: [p.first_response_seconds, p.next_response_seconds, p.resolution_seconds]
      .map(formatDuration).join(" / ") }),
    h("td", { text: t(`q.f.clock.${p.clock}`) }),
    h("td", { text: `${p.warn_percent}%` }),
    h("td", { text: p.queue_ids.map((id) => queueName.get(id) || `#${id}`).join(", ") || "*" }),
    h("td", {}, h("button", { class: "btn btn--small q-edit", attrs: { type: "button" }, text: t("q.admin.edit"),
      on: { click: () => { editing.policy = p.id; showQualityAdmin(ctx.root, ctx); } } }), " ",
    h("button", { class: "btn btn--small", attrs: { type: "button" }, text: t("q.admin.delete"),
      on: { click: () => remove(`/quality/policies/${p.id}`) } }))));
  const c = current || { name: "", first_response_seconds: null, next_response_seconds: null,
    resolution_seconds: null, clock: "wall", warn_percent: 80, priority_factors: {}, queue_ids: [] };
  const f = { name: input({ required: true, maxlength: 100, value: c.name }),
    frt: durationInput(c.first_response_seconds), next: durationInput(c.next_response_seconds),
    res: durationInput(c.resolution_seconds),
    clock: h("select", {}, ["wall", "business"].map((x) => h("option", { attrs: { value: x, selected: c.clock === x },
      text: t(`q.f.clock.${x}`) }))),
    warn: input({ type: "number", min: 0, max: 99, value: c.warn_percent }), urgent: input({ type: "number",
      step: "0.05", min: 0.05, max: 1, value: (c.priority_factors || {}).urgent ?? "" }),
    queues: h("select", { attrs: { multiple: true, size: Math.min(4, Math.max(2, queues.length)) } },
      queues.map((q) => h("option", { attrs: { value: q.id, selected: c.queue_ids.includes(q.id) }, text: q.name }))) };
  const form = h("form", { class: "qform", dataset: { form: "policies" }, on: { submit: (e) => {
    e.preventDefault();
    saving(form, () => {
      const body = { name: f.name.value.trim(), first_response_seconds: seconds(f.frt),
        next_response_seconds: seconds(f.next), resolution_seconds: seconds(f.res), clock: f.clock.value,
        warn_percent: num(f.warn.value) ?? 80, queue_ids: [...f.queues.selectedOptions].map((o) => Number(o.value)) };
      if (f.urgent.value) body.priority_factors = { urgent: Number(f.urgent.value) };
      return current ? api("PATCH", `/quality/policies/${current.id}`, body) : post("/quality/policies", body);
    });
  } } },
  current ? h("p", { class: "qform__editing", text: t("q.admin.editing", { name: current.name }) }) : null,
  h("div", { class: "qform__row" }, field(t("q.f.name"), f.name), field(t("q.f.frt"), f.frt),
    field(t("q.f.next"), f.next), field(t("q.f.resolution"), f.res)),
  h("div", { class: "qform__row" }, field(t("q.f.clock"), f.clock), field(t("q.f.warn"), f.warn),
    field(t("q.f.urgent"), f.urgent), field(t("q.f.queues"), f.queues)),
  h("button", { class: "btn btn--primary", attrs: { type: "submit" },
    text: current ? t("q.admin.save") : t("q.admin.policyNew") }),
  current ? h("button", { class: "btn", attrs: { type: "button" }, text: t("q.admin.cancel"),
    on: { click: () => { editing.policy = null; showQualityAdmin(ctx.root, ctx); } } }) : null);
  return section(t("q.admin.policies"), h("table", { class: "qtable" },
    h("thead", {}, h("tr", {}, [t("q.f.name"), `${t("q.f.frt")} / ${t("q.f.next")} / ${t("q.f.resolution")}`,
      t("q.f.clock"), t("q.f.warn"), t("q.f.queues"), ""].map((x) => h("th", { text: x })))),
    h("tbody", {}, rows)), form);
}

function rulesSection({ rules, teams }) {
  const teamName = (id) => (id === null ? t("q.f.allTeams") : (teams.find((x) => x.id === id) || {}).name || `#${id}`);
  const rows = rules.map((r) => h("tr", {},
    h("td", { text: teamName(r.team_id) }),
    h("td", { text: t(`q.kind.${r.kind}`) }),
    h("td", { text: [r.to_agent && t("q.f.toAgent"), r.to_supervisors && t("q.f.toSupervisors"), ...r.emails,
      r.telegram_chat_id && `Telegram ${r.telegram_chat_id}${r.telegram_bot_token_set ? ` (${t("q.f.tokenSet")})` : ""}`,
      r.destinations && r.destinations.webhook && `${t("q.f.webhook")} ${r.destinations.webhook.url}`,
      r.language && t(`q.f.lang.${r.language}`)]
      .filter(Boolean).join(", ") }),
    h("td", { text: r.threshold ?? "" }),
    h("td", {}, h("button", { class: "btn btn--small q-edit", attrs: { type: "button" }, text: t("q.admin.edit"),
      on: { click: () => { editing.rule = r.id; showQualityAdmin(ctx.root, ctx); } } }), " ",
    h("button", { class: "btn btn--small", attrs: { type: "button" }, text: t("q.admin.delete"),
      on: { click: () => remove(`/quality/rules/${r.id}`) } }))));
  const current = rules.find((r) => r.id === editing.rule) || null;
  const f = {
    team: h("select", {}, h("option", { attrs: { value: "" }, text: t("q.f.allTeams") }),
      teams.map((x) => h("option", { attrs: { value: x.id }, text: x.name }))),
    kind: h("select", {}, KINDS.map((k) => h("option", { attrs: { value: k }, text: t(`q.kind.${k}`) }))),
    agent: h("input", { attrs: { type: "checkbox", checked: current ? current.to_agent : true } }),
    sups: h("input", { attrs: { type: "checkbox", checked: current ? current.to_supervisors : true } }),
    emails: input({ placeholder: "quality@example.com", value: current ? current.emails.join(", ") : "" }),
    chat: input({ placeholder: "-1001234567890", value: current ? current.telegram_chat_id : "" }),
    token: input({ type: "password", autocomplete: "off" }),
    threshold: input({ type: "number", min: 1, max: 4, value: current ? current.threshold ?? "" : "" }),
    hookUrl: input({ type: "url", placeholder: "https://chat.example.com/hooks/…" }),
    hookSecret: input({ type: "password", autocomplete: "off", placeholder: "whsec_…" }),
    language: h("select", {}, ["", "ru", "en"].map((x) => h("option", { attrs: { value: x },
      selected: current ? (current.language || "") === x : x === "", text: t(`q.f.lang.${x || "both"}`) }))),
  };
  if (current) { // a rule keeps its team and kind; the rest can change
    f.team.value = current.team_id === null ? "" : String(current.team_id);
    f.kind.value = current.kind;
    f.team.disabled = true;
    f.kind.disabled = true;
  }
  const form = h("form", { class: "qform", dataset: { form: "rules" }, on: { submit: (e) => {
    e.preventDefault();
    const body = { to_agent: f.agent.checked, to_supervisors: f.sups.checked, emails: csv(f.emails.value),
      telegram_chat_id: f.chat.value.trim() };
    if (!current) Object.assign(body, { team_id: f.team.value ? Number(f.team.value) : null, kind: f.kind.value });
    if (f.token.value.trim()) body.telegram_bot_token = f.token.value.trim();
    if (f.threshold.value) body.threshold = Number(f.threshold.value);
    body.language = f.language.value;
    if (f.hookUrl.value.trim()) {
      body.destinations = { webhook: { url: f.hookUrl.value.trim(), secret: f.hookSecret.value.trim() } };
    }
    saving(form, () => (current ? api("PATCH", `/quality/rules/${current.id}`, body) : post("/quality/rules", body)));
  } } },
  h("div", { class: "qform__row" }, field(t("q.f.team"), f.team), field(t("q.f.kind"), f.kind),
    check(t("q.f.toAgent"), f.agent), check(t("q.f.toSupervisors"), f.sups)),
  h("div", { class: "qform__row" }, field(t("q.f.emails"), f.emails), field(t("q.f.chat"), f.chat),
    field(t("q.f.token"), f.token), field(t("q.f.threshold"), f.threshold)),
  h("div", { class: "qform__row" }, field(t("q.f.webhookUrl"), f.hookUrl), field(t("q.f.webhookSecret"), f.hookSecret),
    field(t("q.f.ruleLanguage"), f.language)),
  h("button", { class: "btn btn--primary", attrs: { type: "submit" },
    text: current ? t("q.admin.save") : t("q.admin.ruleNew") }),
  current ? h("button", { class: "btn", attrs: { type: "button" }, text: t("q.admin.cancel"),
    on: { click: () => { editing.rule = null; showQualityAdmin(ctx.root, ctx); } } }) : null);
  return section(t("q.admin.rules"), h("table", { class: "qtable" },
    h("thead", {}, h("tr", {}, [t("q.f.team"), t("q.f.kind"), "", t("q.f.threshold"), ""].map((x) => h("th", { text: x })))),
    h("tbody", {}, rows)), form);
}

function standardsSection({ standards, teams }) {
  const f = {
    team: h("select", {}, h("option", { attrs: { value: "default" }, text: t("q.f.allTeams") }),
      teams.map((x) => h("option", { attrs: { value: x.id }, text: x.name }))),
    enabled: h("input", { attrs: { type: "checkbox" } }), greeting: h("input", { attrs: { type: "checkbox" } }),
    greetRu: h("textarea", { attrs: { rows: 3 } }), greetEn: h("textarea", { attrs: { rows: 3 } }),
    forbRu: h("textarea", { attrs: { rows: 3 } }), forbEn: h("textarea", { attrs: { rows: 3 } }),
    gap: durationInput(null),
  };
  const fill = () => {
    const key = f.team.value === "default" ? null : Number(f.team.value);
    const s = standards.find((x) => x.team_id === key) || { enabled: true, greeting_required: true, greetings: {},
      forbidden: {}, max_reply_gap_seconds: null };
    f.enabled.checked = s.enabled;
    f.greeting.checked = s.greeting_required;
    f.greetRu.value = (s.greetings.ru || []).join("\n");
    f.greetEn.value = (s.greetings.en || []).join("\n");
    f.forbRu.value = (s.forbidden.ru || []).join("\n");
    f.forbEn.value = (s.forbidden.en || []).join("\n");
    f.gap.value = durationValue(s.max_reply_gap_seconds);
  };
  f.team.addEventListener("change", fill);
  fill();
  const form = h("form", { class: "qform", dataset: { form: "standards" }, on: { submit: (e) => {
    e.preventDefault();
    saving(form, () => api("PUT", `/quality/standards/${f.team.value}`, { enabled: f.enabled.checked,
      greeting_required: f.greeting.checked, greetings: { ru: lines(f.greetRu.value), en: lines(f.greetEn.value) },
      forbidden: { ru: lines(f.forbRu.value), en: lines(f.forbEn.value) }, max_reply_gap_seconds: seconds(f.gap) }));
  } } },
  h("div", { class: "qform__row" }, field(t("q.f.team"), f.team), check(t("q.f.enabled"), f.enabled),
    check(t("q.f.greeting"), f.greeting), field(t("q.f.gap"), f.gap)),
  h("div", { class: "qform__row" },
    field(`${t("q.f.greetings")} RU (${t("q.f.onePerLine")})`, f.greetRu),
    field(`${t("q.f.greetings")} EN`, f.greetEn),
    field(`${t("q.f.forbidden")} RU`, f.forbRu), field(`${t("q.f.forbidden")} EN`, f.forbEn)),
  h("button", { class: "btn btn--primary", attrs: { type: "submit" }, text: t("q.admin.save") }));
  return section(t("q.admin.standards"), form);
}

function csatSection({ csat }) {
  const s = csat.find((x) => x.channel_id === null) || { enabled: false, scale: "csat", ask_after_bot: false,
    ask_comment: true };
  const f = { enabled: h("input", { attrs: { type: "checkbox", checked: s.enabled } }),
    scale: h("select", {}, ["csat", "nps"].map((x) => h("option", { attrs: { value: x, selected: s.scale === x },
      text: x === "csat" ? "CSAT 1–5" : "NPS 0–10" }))),
    bot: h("input", { attrs: { type: "checkbox", checked: s.ask_after_bot } }),
    comment: h("input", { attrs: { type: "checkbox", checked: s.ask_comment } }) };
  const form = h("form", { class: "qform", dataset: { form: "csat" }, on: { submit: (e) => {
    e.preventDefault();
    saving(form, () => api("PUT", "/quality/csat/default", { enabled: f.enabled.checked, scale: f.scale.value,
      ask_after_bot: f.bot.checked, ask_comment: f.comment.checked }));
  } } },
  h("div", { class: "qform__row" }, check(t("q.f.enabled"), f.enabled), field(t("q.f.scale"), f.scale),
    check(t("q.f.askAfterBot"), f.bot), check(t("q.f.askComment"), f.comment)),
  h("button", { class: "btn btn--primary", attrs: { type: "submit" }, text: t("q.admin.save") }));
  return section(t("q.admin.csat"), form);
}

async function remove(path) {
  try {
    await api("DELETE", path);
    await showQualityAdmin(ctx.root, ctx);
  } catch (err) {
    ctx.onError(err);
  }
}
