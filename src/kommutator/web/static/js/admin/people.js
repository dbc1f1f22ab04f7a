// Administration of people and answers: users (role, teams, skills with levels, capacity; deactivate), teams,
// skills (administrators) and canned responses (supervisors too). main.js routes #users, #teams, #skills, #canned.

import "../texts/admin-people.js";
import { del, get, patch, post, put } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { button, chips, field, form, input, notice, pageHead, select, table, tx } from "./kit.js";

export const PEOPLE_SECTIONS = Object.freeze(["users", "teams", "skills", "canned"]);
const NEEDS = { users: ["users", "teams", "skills"], teams: ["teams", "users"], skills: ["skills"],
  canned: ["canned", "teams"] };
const PATHS = { users: "/users?limit=200", teams: "/teams", skills: "/skills", canned: "/canned-responses" };

const s = { root: null, onError: () => {}, onChanged: () => {}, me: () => null, section: null, mode: "list",
  editing: null, data: {}, notice: null, request: 0 };

export function initPeople({ root, onError, onChanged, me }) {
  Object.assign(s, { root, onError, onChanged, me: me || (() => null) });
}

export function resetPeople() {
  Object.assign(s, { section: null, mode: "list", editing: null, data: {}, notice: null });
}

export async function showPeople(section) {
  if (!PEOPLE_SECTIONS.includes(section)) return;
  if (s.section !== section) Object.assign(s, { mode: "list", editing: null, notice: null });
  s.section = section;
  s.root.replaceChildren(h("p", { class: "empty", text: t("app.loading") }));
  await reload();
}

export function peopleLangChanged() {
  if (s.section && s.mode === "list") render();
}

async function reload() {
  const section = s.section;
  const mine = ++s.request;
  let results;
  try {
    results = await Promise.all(NEEDS[section].map((k) => get(PATHS[k])));
  } catch (err) {
    if (mine === s.request) s.onError(err);
    return;
  }
  if (mine !== s.request || section !== s.section) return;
  NEEDS[section].forEach((k, i) => { s.data[k] = k === "users" ? results[i].items : results[i]; });
  render();
}

function render() {
  const screens = { users: [userList, userForm], teams: [teamList, teamForm], skills: [skillList, skillList],
    canned: [cannedList, cannedForm] };
  const [list, edit] = screens[s.section];
  s.root.replaceChildren(h("div", { class: "admin__page" }, s.mode === "list" ? list() : edit()));
  s.root.dataset.section = s.section;
  s.root.dataset.mode = s.mode;
  const first = s.root.querySelector("[data-autofocus]");
  if (first && s.mode !== "list") first.focus();
}

function go(mode, editing = null) {
  Object.assign(s, { mode, editing });
  render();
}

async function saved(key, params) {
  s.notice = { key, params };
  s.mode = "list";
  s.editing = null;
  await reload();
  s.onChanged();
}

function noticeBar() {
  return s.notice ? notice(s.notice.key, s.notice.params, () => { s.notice = null; render(); }) : null;
}

const name = (list, id) => ((list || []).find((x) => x.id === id) || { name: `#${id}` }).name;

// ---- users -------------------------------------------------------------------------------------------------

function userList() {
  const rows = (s.data.users || []).map((u) => h("tr", { class: ["user-row", u.active ? "" : "row--off"],
    dataset: { userId: u.id } },
  h("td", {}, h("div", { class: "cell-title user-row__name", text: u.name }),
    h("div", { class: "cell-sub user-row__email", text: u.email })),
  h("td", { class: "user-row__role" }, tx("span", `people.role.${u.role}`)),
  h("td", { class: "user-row__teams" }, chips(u.team_ids.map((id) => name(s.data.teams, id)))),
  h("td", { class: "user-row__skills" }, chips(u.skills.map((x) => `${name(s.data.skills, x.skill_id)} ${x.level}`))),
  h("td", { class: "num user-row__load", text: `${Math.round(u.load * 10) / 10} / ${u.capacity}` }),
  h("td", { class: "user-row__presence" }, h("span", { class: "presence-dot", dataset: { presence: u.presence } }),
    tx("span", u.active ? `ws.presence.${u.presence}` : "people.inactive")),
  h("td", { class: "cell-actions" }, button("admin.edit", () => go("edit", u), "btn btn--small user-edit"),
    button(u.active ? "people.deactivate" : "people.activate", () => setActive(u), "btn btn--small user-toggle"))));
  return [pageHead("people.users.title", "people.users.lead",
    button("people.users.new", () => go("edit", null), "btn btn--primary", { id: "user-create" })), noticeBar(),
  table("user-table", ["people.col.user", "people.col.role", "people.col.teams", "people.col.skills",
    "people.col.load", "people.col.presence", ""], rows, "people.users.empty")];
}

async function setActive(u) {
  try {
    await patch(`/users/${u.id}`, { active: !u.active });
    await saved(u.active ? "people.users.deactivated" : "people.users.activated", { name: u.name });
  } catch (err) {
    s.onError(err);
  }
}

function userForm() {
  const u = s.editing;
  const nameIn = input(u ? u.name : "", { id: "user-name", maxlength: 200, "data-autofocus": "" });
  const email = input(u ? u.email : "", { id: "user-email", maxlength: 254 }, "email");
  email.disabled = Boolean(u);
  const password = input("", { id: "user-password", autocomplete: "new-password", maxlength: 1024 }, "password");
  // Your own password changes only with the current one; someone else's is a reset that logs them out everywhere.
  const self = Boolean(u && s.me() && s.me().id === u.id);
  const current = self ? input("", { id: "user-current-password", autocomplete: "current-password", maxlength: 1024 },
    "password") : null;
  const role = select(["agent", "supervisor", "admin"].map((r) => ({ value: r, key: `people.role.${r}` })),
    u ? u.role : "agent", { id: "user-role" });
  const capacity = input(u ? u.capacity : 5, { id: "user-capacity", min: 0, max: 100 }, "number");
  const locale = select([{ value: "en", text: "English" }, { value: "ru", text: "Русский" }], u ? u.locale : "en",
    { id: "user-locale" });
  const teams = (s.data.teams || []).map((x) => h("label", { class: "toggle" },
    h("input", { type: "checkbox", value: String(x.id), checked: Boolean(u && u.team_ids.includes(x.id)),
      dataset: { teamId: x.id } }), h("span", { text: x.name })));
  const levels = new Map((u ? u.skills : []).map((x) => [x.skill_id, x.level]));
  const skills = (s.data.skills || []).map((sk) => h("div", { class: "skill-level", dataset: { skillId: sk.id } },
    h("span", { class: "skill-level__name", text: sk.name }),
    select([{ value: "", key: "people.skill.none" }, ...Array.from({ length: 10 }, (_, i) => ({ value: String(i + 1),
      text: String(i + 1) }))], levels.get(sk.id) || "", { "aria-label": sk.name })));
  return [pageHead(u ? "people.users.edit" : "people.users.new", "people.users.formLead"),
    form("user-form", u ? "admin.save" : "people.users.create", () => go("list"), async () => {
      const body = { name: nameIn.value.trim(), role: role.value, capacity: Number(capacity.value), locale: locale.value };
      if (password.value) body.password = password.value;
      if (password.value && current) body.current_password = current.value;
      let user;
      if (u) user = await patch(`/users/${u.id}`, body);
      else user = await post("/users", { ...body, email: email.value.trim(), password: password.value });
      const skillLevels = [...s.root.querySelectorAll(".skill-level")].filter((r) => r.querySelector("select").value)
        .map((r) => ({ skill_id: Number(r.dataset.skillId), level: Number(r.querySelector("select").value) }));
      await put(`/users/${user.id}/skills`, { skills: skillLevels });
      for (const box of s.root.querySelectorAll("[data-team-id]")) {
        const team = s.data.teams.find((x) => x.id === Number(box.dataset.teamId));
        const member = team.member_ids.includes(user.id);
        if (box.checked !== member) {
          const ids = box.checked ? [...team.member_ids, user.id] : team.member_ids.filter((id) => id !== user.id);
          await put(`/teams/${team.id}/members`, { user_ids: ids });
        }
      }
      await saved(u ? "people.users.saved" : "people.users.created", { name: user.name });
    }, s.onError,
    h("div", { class: "form-grid" },
      field("people.user.name", nameIn, { path: "name", required: true }),
      field("people.user.email", email, { path: "email", required: !u }),
      field(u ? "people.user.newPassword" : "people.user.password", password,
        { path: "password", required: !u, hintKey: !u ? "people.user.passwordHint"
          : self ? "people.user.ownPasswordHint" : "people.user.resetHint" }),
      current ? field("people.user.currentPassword", current, { path: "current_password" }) : null,
      field("people.user.role", role, { path: "role" }),
      field("people.user.capacity", capacity, { path: "capacity", hintKey: "people.user.capacityHint" }),
      field("people.user.locale", locale, { path: "locale" })),
    h("fieldset", { class: "form-section", dataset: { path: "team_ids" } }, tx("legend", "people.user.teams", null,
      { class: "form-section__title" }), h("div", { class: "choice-group" }, ...teams)),
    h("fieldset", { class: "form-section", dataset: { path: "skills" } }, tx("legend", "people.user.skills", null,
      { class: "form-section__title" }), tx("p", "people.user.skillsLead", null, { class: "form-section__lead" }),
    h("div", { class: "skill-levels" }, ...skills)))];
}

// ---- teams -------------------------------------------------------------------------------------------------

function teamList() {
  const rows = (s.data.teams || []).map((x) => h("tr", { class: "team-row", dataset: { teamId: x.id } },
    h("td", {}, h("div", { class: "cell-title team-row__name", text: x.name }),
      h("div", { class: "cell-sub", text: x.description })),
    h("td", { class: "team-row__members" }, chips(x.member_ids.map((id) => name(s.data.users, id)))),
    h("td", { class: "cell-actions" }, button("admin.edit", () => go("edit", x), "btn btn--small team-edit"),
      button("people.delete", () => removeTeam(x), "btn btn--small btn--danger-soft team-delete"))));
  return [pageHead("people.teams.title", "people.teams.lead",
    button("people.teams.new", () => go("edit", null), "btn btn--primary", { id: "team-create" })), noticeBar(),
  table("team-table", ["people.col.team", "people.col.members", ""], rows, "people.teams.empty")];
}

async function removeTeam(x) {
  if (!window.confirm(t("people.teams.confirmDelete", { name: x.name }))) return;
  try {
    await del(`/teams/${x.id}`);
    await saved("people.teams.deleted", { name: x.name });
  } catch (err) {
    s.onError(err);
  }
}

function teamForm() {
  const x = s.editing;
  const nameIn = input(x ? x.name : "", { id: "team-name", maxlength: 100, "data-autofocus": "" });
  const description = h("textarea", { id: "team-description", rows: 2, maxLength: 2000, value: x ? x.description : "" });
  const members = (s.data.users || []).filter((u) => u.active).map((u) => h("label", { class: "toggle" },
    h("input", { type: "checkbox", checked: Boolean(x && x.member_ids.includes(u.id)), dataset: { memberId: u.id } }),
    h("span", { text: u.name })));
  return [pageHead(x ? "people.teams.edit" : "people.teams.new", "people.teams.formLead"),
    form("team-form", x ? "admin.save" : "people.teams.create", () => go("list"), async () => {
      const body = { name: nameIn.value.trim(), description: description.value.trim() };
      const team = x ? await patch(`/teams/${x.id}`, body) : await post("/teams", body);
      const ids = [...s.root.querySelectorAll("[data-member-id]")].filter((b) => b.checked)
        .map((b) => Number(b.dataset.memberId));
      await put(`/teams/${team.id}/members`, { user_ids: ids });
      await saved(x ? "people.teams.saved" : "people.teams.created", { name: team.name });
    }, s.onError,
    field("people.team.name", nameIn, { path: "name", required: true }),
    field("people.team.description", description, { path: "description" }),
    h("fieldset", { class: "form-section" }, tx("legend", "people.team.members", null, { class: "form-section__title" }),
      h("div", { class: "choice-group" }, ...members)))];
}

// ---- skills ------------------------------------------------------------------------------------------------

function skillList() {
  const rows = (s.data.skills || []).map((x) => h("tr", { class: "skill-row-admin", dataset: { skillId: x.id } },
    h("td", {}, h("div", { class: "cell-title skill-row-admin__name", text: x.name })),
    h("td", { class: "cell-sub", text: x.description }),
    h("td", { class: "cell-actions" }, button("people.delete", () => removeSkill(x),
      "btn btn--small btn--danger-soft skill-delete"))));
  const nameIn = input("", { id: "skill-name", maxlength: 100 });
  const description = input("", { id: "skill-description", maxlength: 2000 });
  return [pageHead("people.skills.title", "people.skills.lead"), noticeBar(),
    form("skill-form", "people.skills.create", () => { nameIn.value = ""; description.value = ""; }, async () => {
      const skill = await post("/skills", { name: nameIn.value.trim(), description: description.value.trim() });
      await saved("people.skills.created", { name: skill.name });
    }, s.onError, h("div", { class: "form-grid" }, field("people.skill.name", nameIn, { path: "name", required: true }),
      field("people.skill.description", description, { path: "description" }))),
    table("skill-table", ["people.col.skill", "people.col.description", ""], rows, "people.skills.empty")];
}

async function removeSkill(x) {
  if (!window.confirm(t("people.skills.confirmDelete", { name: x.name }))) return;
  try {
    await del(`/skills/${x.id}`);
    await saved("people.skills.deleted", { name: x.name });
  } catch (err) {
    s.onError(err);
  }
}

// ---- canned responses --------------------------------------------------------------------------------------

function cannedList() {
  const rows = (s.data.canned || []).map((c) => h("tr", { class: "canned-row", dataset: { cannedId: c.id } },
    h("td", {}, h("code", { class: "canned-row__shortcut", text: `/${c.shortcut}` })),
    h("td", {}, h("div", { class: "cell-title canned-row__title", text: c.title }),
      h("div", { class: "cell-sub cell-sub--clip canned-row__body", text: c.body })),
    h("td", { class: "canned-row__team" }, c.team_id ? h("span", { text: name(s.data.teams, c.team_id) })
      : tx("span", "people.canned.everyone")),
    h("td", { class: "cell-actions" }, button("admin.edit", () => go("edit", c), "btn btn--small canned-edit"),
      button("people.delete", () => removeCanned(c), "btn btn--small btn--danger-soft canned-delete"))));
  return [pageHead("people.canned.title", "people.canned.lead",
    button("people.canned.new", () => go("edit", null), "btn btn--primary", { id: "canned-create" })), noticeBar(),
  table("canned-table", ["people.col.shortcut", "people.col.answer", "people.col.for", ""], rows,
    "people.canned.empty")];
}

async function removeCanned(c) {
  if (!window.confirm(t("people.canned.confirmDelete", { shortcut: c.shortcut }))) return;
  try {
    await del(`/canned-responses/${c.id}`);
    await saved("people.canned.deleted", { shortcut: c.shortcut });
  } catch (err) {
    s.onError(err);
  }
}

function cannedForm() {
  const c = s.editing;
  const shortcut = input(c ? c.shortcut : "", { id: "canned-shortcut", maxlength: 32, "data-autofocus": "" });
  const title = input(c ? c.title : "", { id: "canned-title", maxlength: 200 });
  const team = select([{ value: "", key: "people.canned.everyone" },
    ...(s.data.teams || []).map((x) => ({ value: String(x.id), text: x.name }))], c ? c.team_id : "", { id: "canned-team" });
  const body = h("textarea", { id: "canned-body", rows: 6, maxLength: 5000, value: c ? c.body : "" });
  return [pageHead(c ? "people.canned.edit" : "people.canned.new", "people.canned.formLead"),
    form("canned-form", c ? "admin.save" : "people.canned.create", () => go("list"), async () => {
      const data = { shortcut: shortcut.value.trim().replace(/^\//, "").toLowerCase(), title: title.value.trim(),
        body: body.value.trim(), team_id: team.value ? Number(team.value) : null };
      const row = c ? await patch(`/canned-responses/${c.id}`, data) : await post("/canned-responses", data);
      await saved(c ? "people.canned.saved" : "people.canned.created", { shortcut: row.shortcut });
    }, s.onError,
    h("div", { class: "form-grid" },
      field("people.canned.shortcut", shortcut, { path: "shortcut", required: true, hintKey: "people.canned.shortcutHint" }),
      field("people.canned.titleField", title, { path: "title", required: true }),
      field("people.canned.team", team, { path: "team_id" })),
    field("people.canned.body", body, { path: "body", required: true, hintKey: "people.canned.bodyHint" }))];
}
