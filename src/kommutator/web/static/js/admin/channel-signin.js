// The OAuth 2.0 sign-in of a channel whose provider allows no passwords (Gmail and Microsoft 365 mailboxes): a
// section on the channel's side card, and the notice shown when the provider sends the browser back.

import "../texts/channel-health.js";
import { post } from "../api.js";
import { h } from "../dom.js";
import { button, state, tx } from "./common.js";

/** "Sign in" for a channel saved with auth "oauth2"; nothing for other channels. */
export function signInSection(channel) {
  if (!channel.settings || channel.settings.auth !== "oauth2") return null;
  const signedIn = (channel.credential_fields || []).includes("oauth_refresh_token");
  const start = button(signedIn ? "signin.again" : "signin.start", async () => {
    start.disabled = true;
    try {
      const answer = await post(`/channels/${channel.id}/oauth/start`, {});
      window.location.assign(answer.authorize_url);
    } catch (err) {
      start.disabled = false;
      state.onError(err);
    }
  }, signedIn ? "btn btn--small" : "btn btn--primary btn--small", { props: { id: "channel-signin" } });
  return h("section", { class: "channel-signin", id: "channel-signin-section" },
    tx("h3", "signin.title", null, { class: "side-card__title" }),
    tx("p", signedIn ? "signin.connected" : "signin.notConnected", null,
      { class: "muted", dataset: { signedIn: String(signedIn) } }),
    start);
}

/** After the provider sent the browser back (?oauth=ok|error&channel=N&reason=…): a notice, and a clean URL. */
export function takeSignInOutcome() {
  const params = new URLSearchParams(window.location.search);
  const outcome = params.get("oauth");
  if (!outcome) return;
  state.notice = outcome === "ok" ? { key: "signin.done" }
    : { key: "signin.failed", params: { reason: params.get("reason") || "" } };
  window.history.replaceState(null, "", window.location.pathname + window.location.hash);
}
