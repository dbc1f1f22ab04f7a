// Quality settings for supervisors (#quality): SLA policies, alert rules per team (who hears of what, by the
// workspace, email and Telegram), communication standards, and the rating question. Plain forms over the
// /api/v1/quality endpoints; every value shown goes through textContent.

import "./texts/quality.js";
import { api, get, post } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

const KINDS = ["sla.warning", "sla.breach", "standard.violation", "csat.negative"];
let ctx = { root: null, onError: () => {} };

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
    note(form, t("q.admin.saved"));
    await showQualityAdmin(ctx.root, ctx);
  } catch (err) {
    note(form, err.detail || String(err), "error");
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
}

function section(title, ...children) {
  return h("section", { class: "qpanel" }, h("h3", { class: "qpanel__title", text: title }), ...children);
}

function policiesSection({ policies, queues }) {
  const queueName = new Map(queues.map((q) => [q.id, q.name]));
  const rows = policies.map((p) => h("tr", {},
    h("td", { text: p.name }),
    h("td", { text: [p.first_response_seconds, p.next_response_seconds, p.resolution_seconds]
      .map((x) => (x ? `${x}s` : "—")).join(" / ") }),
    h("td", { text: t(`q.f.clock.${p.clock}`) }),
    h("td", { text: `${p.warn_percent}%` }),
    h("td", { text: p.queue_ids.map((id) => queueName.get(id) || `#${id}`).join(", ") || "*" }),
    h("td", {}, h("button", { class: "btn btn--small", attrs: { type: "button" }, text: t("q.admin.delete"),
      on: { click: () => remove(`/quality/policies/${p.id}`) } }))));
  const f = { name: input({ required: true, maxlength: 100 }), frt: input({ type: "number", min: 1 }),
    next: input({ type: "number", min: 1 }), res: input({ type: "number", min: 1 }),
    clock: h("select", {}, ["wall", "business"].map((c) => h("option", { attrs: { value: c }, text: t(`q.f.clock.${c}`) }))),
    warn: input({ type: "number", min: 0, max: 99, value: 80 }), urgent: input({ type: "number", step: "0.05", min: 0.05,
      max: 1, value: "" }),
    queues: h("select", { attrs: { multiple: true, size: Math.min(4, Math.max(2, queues.length)) } },
      queues.map((q) => h("option", { attrs: { value: q.id }, text: q.name }))) };
  const form = h("form", { class: "qform", on: { submit: (e) => {
    e.preventDefault();
    const body = { name: f.name.value.trim(), first_response_seconds: num(f.frt.value),
      next_response_seconds: num(f.next.value), resolution_seconds: num(f.res.value), clock: f.clock.value,
      warn_percent: num(f.warn.value) ?? 80, queue_ids: [...f.queues.selectedOptions].map((o) => Number(o.value)) };
    if (f.urgent.value) body.priority_factors = { urgent: Number(f.urgent.value) };
    saving(form, () => post("/quality/policies", body));
  } } },
  h("div", { class: "qform__row" }, field(t("q.f.name"), f.name), field(t("q.f.frt"), f.frt),
    field(t("q.f.next"), f.next), field(t("q.f.resolution"), f.res)),
  h("div", { class: "qform__row" }, field(t("q.f.clock"), f.clock), field(t("q.f.warn"), f.warn),
    field(t("q.f.urgent"), f.urgent), field(t("q.f.queues"), f.queues)),
  h("button", { class: "btn btn--primary", attrs: { type: "submit" }, text: t("q.admin.policyNew") }));
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
    h("td", {}, h("button", { class: "btn btn--small", attrs: { type: "button" }, text: t("q.admin.delete"),
      on: { click: () => remove(`/quality/rules/${r.id}`) } }))));
  const f = {
    team: h("select", {}, h("option", { attrs: { value: "" }, text: t("q.f.allTeams") }),
      teams.map((x) => h("option", { attrs: { value: x.id }, text: x.name }))),
    kind: h("select", {}, KINDS.map((k) => h("option", { attrs: { value: k }, text: t(`q.kind.${k}`) }))),
    agent: h("input", { attrs: { type: "checkbox", checked: true } }),
    sups: h("input", { attrs: { type: "checkbox", checked: true } }),
    emails: input({ placeholder: "quality@example.com" }), chat: input({ placeholder: "-1001234567890" }),
    token: input({ type: "password", autocomplete: "off" }), threshold: input({ type: "number", min: 1, max: 4 }),
    hookUrl: input({ type: "url", placeholder: "https://chat.example.com/hooks/…" }),
    hookSecret: input({ type: "password", autocomplete: "off", placeholder: "whsec_…" }),
    language: h("select", {}, ["", "ru", "en"].map((x) => h("option", { attrs: { value: x },
      text: t(`q.f.lang.${x || "both"}`) }))),
  };
  const form = h("form", { class: "qform", on: { submit: (e) => {
    e.preventDefault();
    const body = { team_id: f.team.value ? Number(f.team.value) : null, kind: f.kind.value, to_agent: f.agent.checked,
      to_supervisors: f.sups.checked, emails: csv(f.emails.value), telegram_chat_id: f.chat.value.trim() };
    if (f.token.value.trim()) body.telegram_bot_token = f.token.value.trim();
    if (f.threshold.value) body.threshold = Number(f.threshold.value);
    body.language = f.language.value;
    if (f.hookUrl.value.trim()) {
      body.destinations = { webhook: { url: f.hookUrl.value.trim(), secret: f.hookSecret.value.trim() } };
    }
    saving(form, () => post("/quality/rules", body));
  } } },
  h("div", { class: "qform__row" }, field(t("q.f.team"), f.team), field(t("q.f.kind"), f.kind),
    check(t("q.f.toAgent"), f.agent), check(t("q.f.toSupervisors"), f.sups)),
  h("div", { class: "qform__row" }, field(t("q.f.emails"), f.emails), field(t("q.f.chat"), f.chat),
    field(t("q.f.token"), f.token), field(t("q.f.threshold"), f.threshold)),
  h("div", { class: "qform__row" }, field(t("q.f.webhookUrl"), f.hookUrl), field(t("q.f.webhookSecret"), f.hookSecret),
    field(t("q.f.ruleLanguage"), f.language)),
  h("button", { class: "btn btn--primary", attrs: { type: "submit" }, text: t("q.admin.ruleNew") }));
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
    gap: input({ type: "number", min: 10 }),
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
    f.gap.value = s.max_reply_gap_seconds ?? "";
  };
  f.team.addEventListener("change", fill);
  fill();
  const form = h("form", { class: "qform", on: { submit: (e) => {
    e.preventDefault();
    const body = { enabled: f.enabled.checked, greeting_required: f.greeting.checked,
      greetings: { ru: lines(f.greetRu.value), en: lines(f.greetEn.value) },
      forbidden: { ru: lines(f.forbRu.value), en: lines(f.forbEn.value) }, max_reply_gap_seconds: num(f.gap.value) };
    saving(form, () => api("PUT", `/quality/standards/${f.team.value}`, body));
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
  const form = h("form", { class: "qform", on: { submit: (e) => {
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
