// The conversation side panel of the live view (supervisor.js): the timeline, SLA clocks and rating, the
// agent typing, and for supervisors take over, reassign and whisper. Customer text goes through textContent.

import { ApiError, get, post } from "./api.js";
import { h } from "./dom.js";
import { has, shortTime, t } from "./i18n.js";

const state = { drawerId: null, drawer: null };
const el = {};
let ctx = null;

/** ctx: {me(), isSupervisor(), agents(), typing (Map), section(), tick(), connect(), onChanged()} */
export function initDrawer(context) {
  ctx = context;
}

export function drawerId() {
  return state.drawerId;
}

function ensureRoot() {
  if (el.drawerRoot) return;
  el.drawerRoot = h("aside", { class: "qdrawer", attrs: { id: "quality-drawer", "aria-label": "conversation" } });
  el.drawerRoot.hidden = true;
  document.body.append(el.drawerRoot);
}

export async function openDrawer(id) {
  ensureRoot();
  state.drawerId = id;
  el.drawerRoot.hidden = false;
  ctx.connect();
  await loadDrawer();
}

export function closeDrawer() {
  state.drawerId = null;
  el.drawerRoot.hidden = true;
  el.drawerRoot.replaceChildren();
  if (/^#conversation\//.test(window.location.hash)) {
    const section = ctx.section();
    history.replaceState(null, "", section ? `#${section}` : window.location.pathname);
  }
}

export async function loadDrawer() {
  const id = state.drawerId;
  try {
    const [conv, quality] = await Promise.all([get(`/conversations/${id}`), get(`/quality/conversations/${id}`)]);
    if (state.drawerId !== id) return;
    state.drawer = { conv, quality };
    renderDrawer();
  } catch (err) {
    el.drawerRoot.replaceChildren(h("div", { class: "qdrawer__head" },
      h("button", { class: "btn", attrs: { type: "button" }, text: t("q.drawer.close"), on: { click: closeDrawer } })),
    h("p", { class: "form-error", text: err instanceof ApiError ? err.detail : String(err) }));
  }
}

function senderLabel(m) {
  if (m.payload && m.payload.whisper_to) return t("q.sender.whisper");
  if (m.kind === "note") return t("q.sender.note");
  if (m.direction === "in") return t("q.sender.customer");
  if (m.sender_type === "bot") return t("q.sender.bot");
  if (m.sender_type === "system") return t("q.sender.system");
  return t("q.sender.agent");
}

export function renderDrawer() {
  const { conv, quality } = state.drawer;
  const agents = ctx.agents();
  const messages = conv.messages.slice(-60);
  const rating = quality.rating;
  const actions = ctx.isSupervisor() ? [
    h("div", { class: "qdrawer__actions" },
      h("button", { class: "btn btn--primary", attrs: { type: "button" }, text: t("q.drawer.takeOver"),
        on: { click: () => assign(ctx.me().id) } }),
      el.reassign = h("select", { attrs: { "aria-label": t("q.drawer.reassign") } },
        h("option", { attrs: { value: "" }, text: t("q.drawer.reassign") }),
        agents.filter((a) => a.id !== conv.assignee_id).map((a) => h("option", { attrs: { value: a.id },
          text: `${a.name} · ${t(`q.presence.${a.presence}`)}` }))),
      h("button", { class: "btn", attrs: { type: "button" }, text: t("q.drawer.reassignDo"),
        on: { click: () => el.reassign.value && assign(Number(el.reassign.value)) } })),
    h("form", { class: "qwhisper", on: { submit: whisper } },
      h("label", { class: "field" }, h("span", { class: "field__label", text: t("q.drawer.whisper") }),
        el.whisper = h("textarea", { attrs: { rows: 2, maxlength: 4000 } })),
      h("p", { class: "muted", text: t("q.drawer.whisperHint") }),
      h("button", { class: "btn", attrs: { type: "submit" }, text: t("q.drawer.whisperSend") }))] : [];
  el.drawerRoot.replaceChildren(
    h("div", { class: "qdrawer__head" },
      h("div", {},
        h("h2", { class: "qdrawer__title", text: conv.contact.name || conv.contact_name || `#${conv.id}` }),
        h("p", { class: "muted", text: `#${conv.id} · ${has(`status.${conv.status}`) ? t(`status.${conv.status}`)
          : conv.status}${conv.subject ? ` · ${conv.subject}` : ""}` })),
      h("button", { class: "btn", attrs: { type: "button" }, text: t("q.drawer.close"), on: { click: closeDrawer } })),
    h("div", { class: "qclocks" }, quality.clocks.map((c) => h("span", { class: ["qclock", `qclock--${c.status}`,
      c.breached_at && "qclock--breached"] }, `${t(`q.target.${c.target}`)}: ${t(`q.clock.${c.status}`)}`,
    c.due_at && c.status === "running" ? h("span", { class: "qrisk__time", dataset: { dueAt: c.due_at } }) : null)),
    rating ? h("span", { class: ["qclock", rating.score <= 2 ? "qclock--missed" : "qclock--hit"],
      text: t("q.drawer.rating", { score: rating.score, top: rating.scale === "nps" ? 10 : 5 }) }) : null),
    h("ol", { class: "qtimeline" }, messages.map((m) => h("li", { class: ["qmsg", `qmsg--${m.direction}`,
      m.kind === "note" && "qmsg--note"], dataset: { senderType: m.sender_type || "" } },
    h("span", { class: "qmsg__meta", text: `${senderLabel(m)} · ${shortTime(m.created_at)}` }),
    h("span", { class: "qmsg__text", text: m.text })))),
    el.typing = h("p", { class: "qtyping" }),
    ...actions);
  renderTyping();
  ctx.tick();
  const list = el.drawerRoot.querySelector(".qtimeline");
  list.scrollTop = list.scrollHeight;
}

export function renderTyping() {
  if (!el.typing) return;
  const typing = ctx.typing.get(state.drawerId);
  el.typing.textContent = typing ? t("q.typing", { name: typing.name }) : "";
}

async function assign(userId) {
  try {
    await post(`/conversations/${state.drawerId}/assign`, { assignee_id: userId });
    await Promise.all([loadDrawer(), ctx.onChanged()]);
  } catch (err) {
    el.drawerRoot.append(h("p", { class: "form-error", text: err instanceof ApiError ? err.detail : String(err) }));
  }
}

async function whisper(e) {
  e.preventDefault();
  const text = el.whisper.value.trim();
  if (!text) return;
  try {
    await post(`/quality/conversations/${state.drawerId}/whisper`, { text });
    el.whisper.value = "";
    el.whisper.placeholder = t("q.drawer.whisperSent");
    await loadDrawer();
  } catch (err) {
    const error = h("p", { class: "form-error", text: err instanceof ApiError ? err.detail : String(err) });
    el.drawerRoot.append(error);
  }
}
