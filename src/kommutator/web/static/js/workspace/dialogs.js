// The conversation's dialogs: transfer (to an agent or a team, with a handover note), snooze (until a time),
// labels. Each is a <dialog> built from text nodes; the server's answer to a bad value is shown inside it.

import { get, post, put } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { errorText, hooks, showBanner, state } from "./state.js";

let open = null;

function tx(tag, key, options = {}) {
  return h(tag, { ...options, dataset: { ...(options.dataset || {}), i18n: key }, text: t(key) });
}

function dialog(id, titleKey, body, submitKey, onSubmit) {
  if (open) open.close();
  const error = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
  const submit = tx("button", submitKey, { class: "btn btn--primary form-submit", type: "submit" });
  const form = h("form", { class: "kdialog__form", attrs: { novalidate: true }, on: { submit: async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    error.hidden = true;
    try {
      await onSubmit(form);
      d.close();
    } catch (err) {
      if (err && err.status === 401) {
        d.close();
        hooks.failed(err);
        return;
      }
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  } } },
  h("header", { class: "kdialog__head" }, tx("h2", titleKey, { class: "kdialog__title", id: `${id}-title` }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": t("contact.close") }, text: "×",
      on: { click: () => d.close() } })),
  h("div", { class: "kdialog__body" }, body),
  h("div", { class: "form-footer kdialog__foot" }, error, h("div", { class: "form-footer__buttons" },
    tx("button", "admin.cancel", { class: "btn form-cancel", type: "button", on: { click: () => d.close() } }), submit)));
  const d = h("dialog", { class: "kdialog", id, attrs: { "aria-labelledby": `${id}-title` } }, form);
  d.addEventListener("close", () => { d.remove(); if (open === d) open = null; });
  open = d;
  document.body.append(d);
  d.showModal();
  const first = d.querySelector("[data-autofocus]");
  if (first) first.focus();
  return d;
}

function labelled(key, control, hintKey) {
  control.id = control.id || `dlg-${key.replace(/\W/g, "-")}`;
  return h("div", { class: "field" }, h("label", { class: "field__label", attrs: { for: control.id } },
    h("span", { dataset: { i18n: key }, text: t(key) })), control,
  hintKey ? h("p", { class: "field__hint", text: t(hintKey) }) : null);
}

/** Transfer to a colleague or a team with a note the receiver sees above the whole history. */
export async function transferDialog() {
  const d = state.detail;
  if (!d) return;
  try { // fresh presence and load of everybody, to choose well
    for (const u of (await get("/users?limit=200")).items) state.users.set(u.id, u);
  } catch (err) {
    hooks.failed(err);
    return;
  }
  const agents = [...state.users.values()].filter((u) => u.active && u.id !== (state.me && state.me.id));
  const agent = h("select", { id: "transfer-agent", dataset: { autofocus: "" } },
    h("option", { value: "", text: t("ws.transfer.noAgent") }),
    agents.map((u) => h("option", { value: String(u.id),
      text: `${u.name} · ${t(`ws.presence.${u.presence}`)} · ${u.load}/${u.capacity}` })));
  const team = h("select", { id: "transfer-team" }, h("option", { value: "", text: t("ws.transfer.keepTeam") }),
    [...state.teams.values()].map((x) => h("option", { value: String(x.id), text: x.name })));
  const note = h("textarea", { id: "transfer-note", rows: 4, maxLength: 2000,
    placeholder: t("ws.transfer.notePlaceholder") });
  agent.addEventListener("change", () => {
    const u = state.users.get(Number(agent.value));
    if (u && u.team_ids && u.team_ids.length && !u.team_ids.includes(d.team_id) && !team.value) {
      team.value = String(u.team_ids[0]); // they could not see it otherwise
    }
  });
  dialog("transfer-dialog", "ws.transfer.title", [
    h("p", { class: "kdialog__lead", text: t("ws.transfer.lead") }),
    labelled("ws.transfer.agent", agent), labelled("ws.transfer.team", team),
    labelled("ws.transfer.note", note, "ws.transfer.noteHint")], "ws.transfer.submit", async () => {
    if (!agent.value && !team.value) throw new Error(t("ws.transfer.pick"));
    const body = { assignee_id: agent.value ? Number(agent.value) : null, note: note.value.trim() };
    if (team.value) body.team_id = Number(team.value);
    await post(`/conversations/${d.id}/assign`, body);
    showBanner(t("ws.transfer.done", { name: agent.value ? state.users.get(Number(agent.value)).name
      : state.teams.get(Number(team.value)).name }), "info", d.id);
    refreshAfterClose();
  });
}

function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Snooze until a time: quick picks or any date and time; the conversation wakes up on its own. */
export function snoozeDialog() {
  const d = state.detail;
  if (!d) return;
  const at = h("input", { id: "snooze-until", type: "datetime-local", required: true });
  const hour = new Date(Date.now() + 3600e3);
  at.value = localInput(hour);
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 1);
  tomorrow.setHours(9, 0, 0, 0);
  const monday = new Date();
  monday.setDate(monday.getDate() + ((8 - monday.getDay()) % 7 || 7));
  monday.setHours(9, 0, 0, 0);
  const quick = h("div", { class: "quick-picks" }, ...[["ws.snooze.hour", hour], ["ws.snooze.tomorrow", tomorrow],
    ["ws.snooze.monday", monday]].map(([key, when]) => tx("button", key, { class: "btn btn--small", type: "button",
    dataset: key === "ws.snooze.hour" ? { autofocus: "" } : {}, on: { click: () => { at.value = localInput(when); } } })));
  dialog("snooze-dialog", "ws.snooze.title", [h("p", { class: "kdialog__lead", text: t("ws.snooze.lead") }), quick,
    labelled("ws.snooze.until", at)], "ws.snooze.submit", async () => {
    const when = new Date(at.value);
    if (Number.isNaN(when.getTime())) throw new Error(t("ws.snooze.pick"));
    await post(`/conversations/${d.id}/status`, { status: "snoozed", snoozed_until: when.toISOString() });
    showBanner(t("ws.snooze.done"), "info", d.id);
    refreshAfterClose();
  });
}

/** Labels: comma-separated, letters, digits, _ and -. */
export function labelsDialog() {
  const d = state.detail;
  if (!d) return;
  const input = h("input", { id: "labels-input", type: "text", value: (d.labels || []).join(", "),
    dataset: { autofocus: "" } });
  dialog("labels-dialog", "ws.labels.title", [labelled("ws.labels.field", input, "ws.labels.hint")], "ws.labels.submit",
    async () => {
      const labels = input.value.split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
      await put(`/conversations/${d.id}/labels`, { labels });
      refreshAfterClose();
    });
}

/** Show the change once the dialog has closed: while a modal is open the rest of the page is inert, so what
 * changed must not appear (and invite the next click) before the dialog is gone. */
function refreshAfterClose() {
  window.setTimeout(() => { hooks.refreshDetail(); hooks.refreshList(); }, 0);
}

export function closeDialogs() {
  if (open) open.close();
}
