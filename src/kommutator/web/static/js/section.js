// A workspace section in a module of its own (loaded by its own <script> tag, like forecast.js and reports.js):
// it adds its link to the top bar for the roles it serves, shows itself when the URL's hash names it (hiding
// the inbox and the other screens), and draws itself again when the language changes. The workspace's own
// router does not know these sections and shows the inbox for them; the section keeps it hidden while open.

import { get } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

/**
 * standaloneSection({name, navKey, allowed(me), navFor(me), build(view, me), shown(view, me), langChanged(view)})
 * allowed: who may open it; navFor: who gets the top-bar link (defaults to allowed and a supervisor's bar).
 */
export function standaloneSection(spec) {
  const state = { me: null, view: null, built: false };
  const active = () => {
    const hash = window.location.hash.replace(/^#/, "");
    return Boolean(state.me) && (hash === spec.name || hash.startsWith(`${spec.name}?`)) && spec.allowed(state.me);
  };

  function hideOthers() {
    for (const other of document.querySelectorAll("#workspace-view > main")) {
      if (other !== state.view && !other.hidden) other.hidden = true;
    }
  }

  function navLink() {
    const nav = document.getElementById("main-nav");
    if (!nav) return;
    let link = nav.querySelector(`[data-own-section="${spec.name}"]`);
    if (!state.me || !(spec.navFor || spec.allowed)(state.me)) {
      if (link) link.remove(); // another user logged in on this tab
      return;
    }
    if (!link) {
      link = h("a", { class: "mainnav__link", attrs: { href: `#${spec.name}` }, dataset: { ownSection: spec.name } });
      nav.append(link);
    }
    link.textContent = t(spec.navKey);
  }

  function route() {
    if (!state.view) return;
    const on = active();
    const link = document.querySelector(`#main-nav [data-own-section="${spec.name}"]`);
    if (link) {
      if (on) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const was = !state.view.hidden;
    state.view.hidden = !on;
    if (!on) {
      // Drawn only while open, like the workspace's own sections: nothing of it lingers in the page meanwhile.
      if (state.built) state.view.replaceChildren();
      state.built = false;
      return;
    }
    hideOthers();
    if (!state.built) {
      spec.build(state.view, state.me);
      state.built = true;
    }
    if (!was) spec.shown(state.view, state.me);
  }

  async function onWorkspace() {
    const workspace = document.getElementById("workspace-view");
    if (!workspace || workspace.hidden) {
      state.me = null;
      if (state.view) {
        state.view.hidden = true;
        state.view.replaceChildren();
        state.built = false;
      }
      return;
    }
    if (state.me) return;
    try {
      const me = await get("/auth/me");
      state.me = me.user || me;
    } catch {
      return;
    }
    if (!state.view) {
      state.view = h("main", { class: ["admin", `section-${spec.name}`], attrs: { id: `${spec.name}-view` },
        hidden: true });
      workspace.append(state.view);
    }
    navLink();
    route();
  }

  function boot() {
    const workspace = document.getElementById("workspace-view");
    if (!workspace) return;
    new MutationObserver(onWorkspace).observe(workspace, { attributes: true, attributeFilter: ["hidden"] });
    const inbox = document.getElementById("inbox-view");
    if (inbox) {
      new MutationObserver(() => { if (active() && state.view && !state.view.hidden) hideOthers(); })
        .observe(inbox, { attributes: true, attributeFilter: ["hidden"] });
    }
    const select = document.getElementById("lang-select");
    if (select) {
      select.addEventListener("change", () => setTimeout(() => {
        navLink();
        if (state.view && state.me && state.built) spec.langChanged(state.view, state.me);
      }, 0));
    }
    window.addEventListener("hashchange", route);
    onWorkspace();
  }

  boot();
  return { me: () => state.me, active };
}
