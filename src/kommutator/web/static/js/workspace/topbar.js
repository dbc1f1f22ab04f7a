// The top bar: the agent's presence and load, the live connection's state, and the notifications bell.

import { get, patch, post } from "../api.js";
import { h, show } from "../dom.js";
import { t } from "../i18n.js";
import { alertAgent, askPermission } from "../notify.js";
import { el, hooks, state } from "./state.js";

let bellItems = [];
let unreadCount = 0;
let meTimer = null;

export function initTopbar() {
  el.presence.addEventListener("change", async () => {
    try {
      state.me = (await patch(`/users/${state.me.id}`, { presence: el.presence.value }));
      renderMe();
    } catch (err) {
      hooks.failed(err);
    }
  });
  el.bell.addEventListener("click", () => {
    askPermission();
    const opening = el.bellMenu.hidden;
    show(el.bellMenu, opening);
    el.bell.setAttribute("aria-expanded", String(opening));
    if (opening) loadNotifications();
  });
  el.bellReadAll.addEventListener("click", async () => {
    try {
      await post("/notifications/read-all");
      await loadNotifications();
    } catch (err) {
      hooks.failed(err);
    }
  });
  el.notifyEnable.addEventListener("click", () => { askPermission(); renderPermission(); });
  document.addEventListener("click", (event) => {
    if (!el.bellMenu.hidden && !el.bellWrap.contains(event.target)) {
      show(el.bellMenu, false);
      el.bell.setAttribute("aria-expanded", "false");
    }
  });
}

export function renderMe() {
  const me = state.me;
  if (!me) return;
  el.presence.value = me.presence;
  el.presenceDot.dataset.presence = me.presence;
  const load = Math.round((me.load || 0) * 10) / 10;
  el.load.textContent = t("ws.load", { load, capacity: me.capacity });
  el.load.dataset.full = String(load >= me.capacity);
  el.load.title = t("ws.loadTitle");
}

/** Re-read my presence and load soon (after assignments change). */
export function scheduleMe() {
  if (meTimer !== null) return;
  meTimer = window.setTimeout(async () => {
    meTimer = null;
    try {
      const me = await get("/auth/me");
      if (state.me) {
        state.me = me.user;
        renderMe();
      }
    } catch {
      // the next event or the safety refresh tries again
    }
  }, 300);
}

export function renderConnection(conn) {
  state.connection = conn;
  el.connection.dataset.state = conn;
  el.connectionText.dataset.i18n = `ws.conn.${conn}`;
  el.connectionText.textContent = t(`ws.conn.${conn}`);
}

function renderPermission() {
  const can = "Notification" in window;
  show(el.notifyEnable, can && Notification.permission === "default");
}

function renderBell() {
  el.bellCount.textContent = unreadCount > 99 ? "99+" : String(unreadCount);
  show(el.bellCount, unreadCount > 0);
  el.bell.setAttribute("aria-label", t("ws.bell.label", { n: unreadCount }));
  el.bellList.replaceChildren(...bellItems.map((n) => h("li", { class: ["bell-item", `bell-item--${n.severity}`,
    n.read_at ? "" : "bell-item--unread"], dataset: { notificationId: n.id } },
  h("button", { class: "bell-item__button", type: "button", on: { click: () => openNotification(n) } },
    h("span", { class: "bell-item__title", text: n.title }),
    n.body ? h("span", { class: "bell-item__body", text: n.body }) : null))));
  show(el.bellEmpty, bellItems.length === 0);
  renderPermission();
}

export async function loadNotifications() {
  try {
    const page = await get("/notifications?limit=20");
    bellItems = page.items || [];
    unreadCount = page.unread || 0;
    renderBell();
  } catch (err) {
    if (err && err.status === 401) hooks.failed(err);
  }
}

async function openNotification(n) {
  show(el.bellMenu, false);
  if (!n.read_at) {
    try {
      await post(`/notifications/${n.id}/read`);
    } catch {
      // shown as unread until the next load; opening the conversation matters more
    }
  }
  if (n.conversation_id) {
    window.location.hash = "";
    hooks.openConversation(n.conversation_id);
  }
  loadNotifications();
}

/** notification.created from the socket: count it, and alert at once when it is critical. */
export function notificationArrived(event) {
  loadNotifications();
  if (event.severity === "critical") {
    alertAgent(event.title || t("ws.bell.critical"), event.body || "",
      event.conversation_id ? () => hooks.openConversation(event.conversation_id) : null);
  }
}

export function resetTopbar() {
  bellItems = [];
  unreadCount = 0;
  show(el.bellMenu, false);
  renderBell();
}
