// Administration screens of the workspace (administrators only): channels and queues. The screens live in
// admin/channels.js and admin/queues.js, their shared builders in admin/common.js; this module keeps the
// wiring main.js uses. Every name and value from the server is put into the page as text (see dom.js).

import { channelForm, channelList, createdView, typePicker } from "./admin/channels.js";
import { takeSignInOutcome } from "./admin/channel-signin.js";
import { LIVE, reload, render, screens, SECTIONS, state } from "./admin/common.js";
import { queueForm, queueList } from "./admin/queues.js";
import { flowsScreen } from "./admin/flows.js";
import { intentsScreen } from "./admin/intents.js";
import { privacyScreen } from "./admin/privacy.js";
import { subscriptionsScreen } from "./admin/subscriptions.js";
import { templatesScreen } from "./admin/templates.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

screens.channels = { list: channelList, pick: typePicker, create: channelForm, edit: channelForm, result: createdView };
screens.queues = { list: queueList, queue: queueForm };
// Screens that keep their own state in their own module: {show(root, {onError}), refresh(), langChanged()}.
const SCREENS = { flows: flowsScreen, intents: intentsScreen, subscriptions: subscriptionsScreen,
  privacy: privacyScreen, templates: templatesScreen };

// ---- wiring from main.js ---------------------------------------------------------------------------------

export const ADMIN_SECTIONS = Object.freeze([...SECTIONS, ...Object.keys(SCREENS)]);

export function initAdmin({ root, onError, onChannelsChanged }) {
  state.root = root;
  state.onError = onError;
  state.onChannelsChanged = onChannelsChanged || (() => {});
}

/** Open a section (its list), loading what it needs. */
export async function showAdmin(section) {
  if (!ADMIN_SECTIONS.includes(section)) return;
  const switching = state.section !== section;
  state.section = section;
  if (SCREENS[section]) return SCREENS[section].show(state.root, { onError: state.onError });
  if (switching || state.mode !== "result") {
    state.mode = "list";
    state.result = null;
    state.confirmDelete = null;
  }
  state.notice = switching ? null : state.notice;
  if (section === "channels") takeSignInOutcome();
  if (switching) state.root.replaceChildren(h("p", { class: "empty", text: t("app.loading") }));
  await reload({ force: true });
}

/** Refresh the open list with fresh figures (waiting counts); forms in progress are left alone. */
export async function refreshAdmin() {
  if (SCREENS[state.section]) return SCREENS[state.section].refresh();
  if (state.section && state.mode === "list") await reload({ force: false, only: LIVE[state.section] });
}

/** The language changed: data-i18n labels are already translated; lists with figures are drawn again. */
export function adminLangChanged() {
  if (SCREENS[state.section]) return SCREENS[state.section].langChanged();
  if (state.section && state.mode === "list") render(true);
}

export function resetAdmin() {
  state.section = null;
  state.mode = "list";
  state.data = {};
  state.result = null;
  state.editing = null;
  state.notice = null;
  state.signature = "";
  if (state.root) state.root.replaceChildren();
}
