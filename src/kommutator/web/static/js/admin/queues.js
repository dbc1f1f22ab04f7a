// The queue screens: the list with waiting counts, and the form (skills, business hours, timers).

import { api, patch, post } from "../api.js";
import { h } from "../dom.js";
import { has, t } from "../i18n.js";
import { button, byId, checkbox, clearField, clearOnEdit, dash, DAYS, duration, field, formFooter, go, idOrNull,
  noticeBar, pageHead, QUEUE_DEFAULTS, reload, render, section, select, state, submitting, teamOptions, textInput, tx,
  WEEKDAYS } from "./common.js";

// ---- queues: the list ------------------------------------------------------------------------------------------

function strategyTitle(name) {
  if (has(`strategy.${name}`)) return t(`strategy.${name}`);
  const found = (state.data.strategies || []).find((x) => x.name === name);
  return found ? found.title : name;
}

function skillName(id) {
  const skill = byId(state.data.skills, id);
  return skill ? skill.name : `#${id}`;
}

export function queueList() {
  const queues = state.data.queues || [];
  const head = pageHead("admin.queues.title", "admin.queues.lead",
    button("admin.queues.create", () => go("queue", { editing: null }), "btn btn--primary", { props: { id: "queue-create" } }));
  const confirm = state.confirmDelete ? deleteConfirm(state.confirmDelete) : null;
  if (!queues.length) {
    return h("div", { class: "admin__page" }, head, noticeBar(),
      h("div", { class: "card empty-card" }, tx("p", "admin.queues.empty")));
  }
  const cols = ["admin.col.queue", "admin.col.team", "admin.col.priority", "admin.col.strategy", "admin.col.skills",
    "admin.col.waiting", "admin.col.longestWait", "admin.col.hours", "admin.col.status", "admin.col.actions"];
  const table = h("table", { class: "table", id: "queue-table" },
    h("thead", {}, h("tr", {}, ...cols.map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
    h("tbody", {}, ...queues.map(queueRow)));
  return h("div", { class: "admin__page" }, head, noticeBar(), confirm, h("div", { class: "card table-wrap" }, table));
}

function queueRow(q) {
  const team = byId(state.data.teams, q.team_id);
  const skills = q.required_skills || [];
  let hours;
  if (!q.business_hours) hours = tx("span", "admin.queue.alwaysOpen", null, { class: "badge badge--bot" });
  else {
    hours = h("span", { class: "hours-cell" },
      tx("span", q.open_now ? "admin.queue.openNow" : "admin.queue.closedNow", null,
        { class: ["badge", q.open_now ? "badge--resolved" : "badge--other"] }),
      h("span", { class: "cell-sub", text: q.business_hours.timezone || "" }));
  }
  return h("tr", { class: ["queue-row", q.enabled ? "" : "row--off"], dataset: { queueId: q.id } },
    h("td", {}, h("span", { class: "cell-title queue-row__name", text: q.name }),
      q.description ? h("span", { class: "cell-sub cell-sub--clip", attrs: { title: q.description }, text: q.description }) : null),
    h("td", { class: "queue-row__team" }, team ? team.name : tx("span", "admin.queue.anyTeam", null, { class: "muted" })),
    h("td", { class: "num queue-row__priority", text: String(q.priority) }),
    h("td", { class: "queue-row__strategy", text: strategyTitle(q.strategy) }),
    h("td", { class: "queue-row__skills" }, skills.length
      ? h("span", { class: "chips" }, ...skills.map((s) => h("span", { class: "chip",
        text: t("admin.queue.skillLevel", { skill: skillName(s.skill_id), level: s.min_level }) })))
      : dash()),
    h("td", { class: ["num", "queue-row__waiting", q.waiting ? "num--hot" : ""], text: String(q.waiting) }),
    h("td", { class: "num queue-row__wait", text: q.waiting ? duration(q.longest_wait_seconds) : t("contact.none") }),
    h("td", { class: "queue-row__hours" }, hours),
    h("td", {}, tx("span", q.enabled ? "admin.enabled" : "admin.disabled", null,
      { class: ["badge", q.enabled ? "badge--resolved" : "badge--other"] })),
    h("td", { class: "cell-actions" },
      button("admin.edit", () => go("queue", { editing: q }), "btn btn--small queue-edit"),
      button("admin.delete", () => { state.confirmDelete = q; render(true); }, "btn btn--small btn--danger-soft queue-delete")));
}

function deleteConfirm(q) {
  const yes = button("admin.queue.deleteYes", async () => {
    yes.disabled = true;
    try {
      await api("DELETE", `/queues/${q.id}`);
      state.confirmDelete = null;
      state.notice = { key: "admin.queue.deleted", params: { name: q.name } };
      await reload({ force: true });
    } catch (err) {
      yes.disabled = false;
      state.onError(err);
    }
  }, "btn btn--danger", { props: { id: "queue-delete-confirm" } });
  return h("div", { class: "confirm", attrs: { role: "alertdialog", "aria-labelledby": "confirm-text" } },
    tx("p", q.waiting ? "admin.queue.deleteAskWaiting" : "admin.queue.deleteAsk", { name: q.name, n: q.waiting },
      { id: "confirm-text", class: "confirm__text" }),
    h("div", { class: "confirm__buttons" },
      button("admin.cancel", () => { state.confirmDelete = null; render(true); }, "btn", { props: { id: "queue-delete-cancel" } }),
      yes));
}

// ---- queues: the form --------------------------------------------------------------------------------------

function numberField(key, value, path, { min, max, hintKey, unitKey } = {}) {
  const input = textInput(value, { min: min ?? null, max: max ?? null, step: 1, inputmode: "numeric", id: `queue-${path}` }, "number");
  const control = unitKey ? h("span", { class: "with-unit" }, input, tx("span", unitKey, null, { class: "with-unit__unit" })) : input;
  return field({ key, control, input, path, hintKey });
}

function skillRow(skill, index) {
  const skills = state.data.skills || [];
  const pick = select(skills.map((s) => ({ value: s.id, text: s.name })), skill ? skill.skill_id : (skills[0] || {}).id,
    { class: "skill-row__skill", "aria-label": t("admin.queue.skill") });
  const level = select([1, 2, 3, 4, 5].map((n) => ({ value: n, text: String(n) })), skill ? skill.min_level : 1,
    { class: "skill-row__level", "aria-label": t("admin.queue.minLevel") });
  const row = h("div", { class: "skill-row", dataset: { path: `required_skills.${index}` } }, pick, tx("span", "admin.queue.atLeast", null, { class: "muted" }), level,
    h("button", { class: "btn btn--small btn--ghost", type: "button", attrs: { "aria-label": t("admin.remove") },
      text: "×", on: { click: () => { row.remove(); renumberSkills(); } } }));
  return row;
}

function renumberSkills() {
  document.querySelectorAll("#queue-skills .skill-row").forEach((row, i) => {
    row.dataset.path = `required_skills.${i}`;
  });
}

function normaliseTime(value) {
  const m = /^(\d{1,2})[:.](\d{2})$/.exec(value.trim());
  return m ? `${m[1].padStart(2, "0")}:${m[2]}` : value.trim();
}

function intervalEl(day, pair) {
  const from = textInput(pair ? pair[0] : "09:00", { class: "interval__from", maxlength: 5, inputmode: "numeric",
    placeholder: "09:00", "aria-label": t("admin.hours.from") });
  const to = textInput(pair ? pair[1] : "18:00", { class: "interval__to", maxlength: 5, inputmode: "numeric",
    placeholder: "18:00", "aria-label": t("admin.hours.to") });
  const el = h("span", { class: "interval" }, from, h("span", { class: "muted", text: "–" }), to,
    h("button", { class: "btn btn--small btn--ghost", type: "button", attrs: { "aria-label": t("admin.remove") }, text: "×",
      on: { click: () => { const list = el.parentElement; el.remove(); markClosed(list); } } }));
  return el;
}

function markClosed(list) {
  const row = list.closest(".hours__day");
  row.classList.toggle("hours__day--closed", !list.querySelector(".interval"));
  clearField(row);
}

/** The administrator changed a field the server complained about: its message is out of date. */
function dayRow(day, intervals) {
  const list = h("div", { class: "hours__intervals" }, ...intervals.map((pair) => intervalEl(day, pair)));
  const row = h("div", { class: "hours__day", dataset: { day, path: `business_hours.days.${day}` } },
    tx("span", `day.${day}`, null, { class: "hours__dayname" }),
    list,
    tx("span", "admin.hours.closed", null, { class: "hours__closed muted" }),
    button("admin.hours.add", () => { list.append(intervalEl(day)); markClosed(list); }, "btn btn--small btn--ghost hours__add"),
    h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }));
  markClosed(list);
  return row;
}

function timeZones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["Europe/Moscow", "Europe/London", "UTC"];
  }
}

function hoursEditor(bh) {
  const always = h("input", { type: "radio", name: "hours-mode", value: "always", checked: !bh, id: "hours-always" });
  const custom = h("input", { type: "radio", name: "hours-mode", value: "custom", checked: Boolean(bh), id: "hours-custom" });
  const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/Moscow";
  const tz = textInput(bh ? bh.timezone : localZone, { id: "hours-timezone", list: "tz-list", autocomplete: "off", spellcheck: "false" });
  const zones = h("datalist", { id: "tz-list" }, ...timeZones().map((z) => h("option", { value: z })));
  const days = (bh && bh.days) || Object.fromEntries(["mon", "tue", "wed", "thu", "fri"].map((d) => [d, [["09:00", "18:00"]]]));
  const grid = h("div", { class: "hours__grid", id: "hours-days" }, ...DAYS.map((d) => dayRow(d, days[d] || [])));
  const holidays = textInput(((bh && bh.holidays) || []).join(", "), { id: "hours-holidays", placeholder: "2026-12-31, 2027-01-01" });
  const copyMonday = button("admin.hours.copyMonday", () => {
    const monday = [...grid.querySelectorAll('[data-day="mon"] .interval')].map((iv) =>
      [iv.querySelector(".interval__from").value, iv.querySelector(".interval__to").value]);
    for (const d of WEEKDAYS) {
      const list = grid.querySelector(`[data-day="${d}"] .hours__intervals`);
      list.replaceChildren(...monday.map((pair) => intervalEl(d, pair)));
      markClosed(list);
    }
  }, "btn btn--small");
  const details = h("div", { class: "hours__details", id: "hours-details" },
    h("div", { class: "form-grid" },
      field({ key: "admin.hours.timezone", control: tz, path: "business_hours.timezone", hintKey: "admin.hours.timezoneHint" }),
      field({ key: "admin.hours.holidays", control: holidays, path: "business_hours.holidays", hintKey: "admin.hours.holidaysHint" })),
    zones, grid, h("div", { class: "hours__tools" }, copyMonday));
  const sync = () => { details.hidden = !custom.checked; };
  always.addEventListener("change", sync);
  custom.addEventListener("change", sync);
  sync();
  const editor = h("div", { class: "hours", dataset: { path: "business_hours" } },
    h("div", { class: "segmented", attrs: { role: "radiogroup" } },
      h("label", { class: "segmented__option" }, always, tx("span", "admin.hours.always")),
      h("label", { class: "segmented__option" }, custom, tx("span", "admin.hours.custom"))),
    h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }),
    details);
  editor.collect = () => {
    if (!custom.checked) return null;
    const out = {};
    for (const row of grid.querySelectorAll(".hours__day")) {
      const pairs = [...row.querySelectorAll(".interval")].map((iv) => [".interval__from", ".interval__to"].map((cls) => {
        const input = iv.querySelector(cls);
        input.value = normaliseTime(input.value); // "9:00" is shown as the "09:00" that is sent
        return input.value;
      })).filter(([a, b]) => a || b);
      if (pairs.length) out[row.dataset.day] = pairs;
    }
    return { timezone: tz.value.trim(), days: out, holidays: holidays.value.split(/[\s,;]+/).filter(Boolean) };
  };
  return editor;
}

export function queueForm() {
  const q = state.editing;
  const v = q || QUEUE_DEFAULTS;
  const name = textInput(q ? q.name : "", { id: "queue-name", maxlength: 100, autocomplete: "off", "data-autofocus": "1" });
  const description = h("textarea", { id: "queue-description", rows: 2, value: q ? q.description : "", attrs: { maxlength: 2000 } });
  const team = select(teamOptions("admin.queue.anyTeam"), q ? q.team_id : "", { id: "queue-team" });
  const strategies = state.data.strategies || [];
  const strategy = select(strategies.map((s) => ({ value: s.name, text: strategyTitle(s.name) })), v.strategy, { id: "queue-strategy" });
  const expiry = select([{ value: "ask", key: "admin.queue.expiry.ask" }, { value: "queue", key: "admin.queue.expiry.queue" }],
    v.manager_wait_expiry, { id: "queue-manager_wait_expiry" });
  const skills = h("div", { class: "skill-rows", id: "queue-skills" },
    ...(q ? q.required_skills : []).map((s, i) => skillRow(s, i)));
  const addSkill = button("admin.queue.addSkill", () => { skills.append(skillRow(null, 0)); renumberSkills(); },
    "btn btn--small", { props: { id: "queue-add-skill", disabled: !(state.data.skills || []).length } });
  const hours = hoursEditor(q ? q.business_hours : null);
  const form = h("form", { class: "admin-form", id: "queue-form", noValidate: true },
    section("admin.queue.general", null, h("div", { class: "form-grid" },
      field({ key: "admin.queue.name", control: name, required: true, path: "name" }),
      field({ key: "admin.queue.team", control: team, path: "team_id", hintKey: "admin.queue.teamHint" }),
      field({ key: "admin.queue.description", control: description, path: "description", wide: true }),
      numberField("admin.queue.priority", v.priority, "priority", { min: -100, max: 100, hintKey: "admin.queue.priorityHint" }),
      field({ key: "admin.queue.strategy", control: strategy, path: "strategy", hintKey: "admin.queue.strategyHint" }),
      checkbox({ key: "admin.queue.enabled", checked: v.enabled, id: "queue-enabled", path: "enabled" }))),
    section("admin.queue.skills", "admin.queue.skillsLead",
      h("div", { class: "field", dataset: { path: "required_skills" } }, skills,
        (state.data.skills || []).length ? null : tx("p", "admin.queue.noSkills", null, { class: "muted" }),
        h("div", {}, addSkill), h("p", { class: "field__error", attrs: { role: "alert" }, hidden: true }))),
    section("admin.queue.hours", "admin.queue.hoursLead", hours),
    section("admin.queue.service", null, h("div", { class: "form-grid" },
      numberField("admin.queue.slPercent", v.sl_target_percent, "sl_target_percent", { min: 1, max: 100, unitKey: "unit.percent" }),
      numberField("admin.queue.slSeconds", v.sl_target_seconds, "sl_target_seconds",
        { min: 1, max: 86400, unitKey: "unit.seconds", hintKey: "admin.queue.slHint" }),
      numberField("admin.queue.acceptTimeout", v.accept_timeout_seconds, "accept_timeout_seconds",
        { min: 0, max: 3600, unitKey: "unit.seconds", hintKey: "admin.queue.acceptHint" }),
      numberField("admin.queue.waitNotice", v.wait_notice_seconds, "wait_notice_seconds",
        { min: 0, max: 86400, unitKey: "unit.seconds", hintKey: "admin.queue.waitNoticeHint" }),
      numberField("admin.queue.managerWait", v.manager_wait_seconds, "manager_wait_seconds",
        { min: 60, max: 604800, unitKey: "unit.seconds", hintKey: "admin.queue.managerWaitHint" }),
      field({ key: "admin.queue.managerExpiry", control: expiry, path: "manager_wait_expiry", hintKey: "admin.queue.managerExpiryHint" }))),
    formFooter(q ? "admin.save" : "admin.queues.createSubmit", () => go("list")));
  clearOnEdit(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const body = { name: name.value.trim(), description: description.value.trim(), team_id: idOrNull(team.value),
        strategy: strategy.value, manager_wait_expiry: expiry.value, enabled: form.querySelector("#queue-enabled").checked,
        required_skills: [...skills.querySelectorAll(".skill-row")].map((row) => ({
          skill_id: Number(row.querySelector(".skill-row__skill").value),
          min_level: Number(row.querySelector(".skill-row__level").value) })),
        business_hours: hours.collect() };
      for (const key of ["priority", "sl_target_percent", "sl_target_seconds", "accept_timeout_seconds",
        "wait_notice_seconds", "manager_wait_seconds"]) {
        const raw = form.querySelector(`#queue-${key}`).value.trim();
        if (raw !== "") body[key] = Number(raw);
      }
      const saved = q ? await patch(`/queues/${q.id}`, body) : await post("/queues", body);
      state.notice = { key: q ? "admin.queue.saved" : "admin.queue.created", params: { name: saved.name } };
      state.mode = "list";
      await reload({ force: true });
    });
  });
  const head = h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" },
      tx("h2", q ? "admin.queue.editTitle" : "admin.queue.newTitle", { name: q ? q.name : "" }, { class: "admin__title" }),
      tx("p", "admin.queues.lead", null, { class: "admin__lead" })),
    h("div", { class: "admin__actions" }, button("admin.back", () => go("list"), "btn")));
  return h("div", { class: "admin__page" }, head, h("div", { class: "card" }, form));
}
