// Channel icons and initials avatars, drawn as inline SVG elements (no files, no markup strings).

const SVG = "http://www.w3.org/2000/svg";

// One 24x24 path per channel type; an unknown type gets the generic speech bubble.
const PATHS = {
  telegram: "M21.5 4.2 2.9 11.4c-1.3.5-1.2 1.3-.2 1.6l4.7 1.5 1.8 5.6c.2.6.4.8.9.8.4 0 .6-.2.9-.4l2.3-2.2 "
    + "4.8 3.5c.9.5 1.5.2 1.7-.8l3.1-14.6c.3-1.3-.5-1.9-1.4-1.5ZM9.6 14.2l8.6-7.9-6.9 9.1-.3 3-1.4-4.2Z",
  whatsapp: "M12 2a10 10 0 0 0-8.6 15.1L2 22l5-1.3A10 10 0 1 0 12 2Zm0 18.2a8.2 8.2 0 0 1-4.2-1.2l-.3-.2-3 .8.8-2.9"
    + "-.2-.3A8.2 8.2 0 1 1 12 20.2Zm4.5-6.1c-.2-.1-1.5-.7-1.7-.8-.2-.1-.4-.1-.6.1l-.8 1c-.1.2-.3.2-.5.1a6.7 6.7 0 0 1"
    + "-3.3-2.9c-.2-.4.2-.4.7-1.3.1-.2 0-.3 0-.4l-.8-1.8c-.2-.5-.4-.4-.6-.4h-.5a1 1 0 0 0-.7.3 3 3 0 0 0-.9 2.2 5.2 5.2 "
    + "0 0 0 1.1 2.8 11.9 11.9 0 0 0 4.6 4c1.7.7 2.4.8 3.2.7.5-.1 1.5-.6 1.8-1.2.2-.6.2-1.1.1-1.2l-.4-.2Z",
  vk: "M3 7h3.2c.1 3.4 1.6 4.9 2.8 5.2V7h3v2.9c1.2-.1 2.4-1.5 2.8-2.9h3c-.5 1.8-1.9 3.2-2.9 3.8 1 .5 2.6 1.8 3.2 "
    + "4.2h-3.3c-.4-1.4-1.5-2.4-2.8-2.6V17h-.4C7.1 17 3.2 14 3 7Z",
  email: "M3 5h18a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1Zm1 2.3V17h16V7.3l-8 5.4-8-5.4ZM5.5 "
    + "7l6.5 4.4L18.5 7h-13Z",
  sms: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2Zm3 7a1.3 1.3 0 1 0 0 2.6A1.3 1.3 0 0 0 7 10Zm5 0a1.3"
    + " 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6Zm5 0a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6Z",
  webchat: "M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-6l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm2 4v2h12V8H6Zm0 4v2h8v-2H6Z",
  api: "M8.6 6.6 3.2 12l5.4 5.4 1.4-1.4L6 12l4-4-1.4-1.4Zm6.8 0L14 8l4 4-4 4 1.4 1.4 5.4-5.4-5.4-5.4Z",
};

export const CHANNEL_TITLES = { telegram: "Telegram", whatsapp: "WhatsApp", vk: "VK", email: "Email", sms: "SMS",
  webchat: "Web chat", api: "API" };

function svg(pathData, cls, title) {
  const el = document.createElementNS(SVG, "svg");
  el.setAttribute("viewBox", "0 0 24 24");
  el.setAttribute("class", cls);
  el.setAttribute("aria-hidden", title ? "false" : "true");
  el.setAttribute("focusable", "false");
  if (title) {
    const t = document.createElementNS(SVG, "title");
    t.textContent = title;
    el.append(t);
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", pathData);
  path.setAttribute("fill", "currentColor");
  el.append(path);
  return el;
}

/** A small coloured channel badge for a channel type ("telegram", "email", …). */
export function channelIcon(type, title = "") {
  const known = Object.prototype.hasOwnProperty.call(PATHS, type);
  const span = document.createElement("span");
  span.className = `chan chan--${known ? type : "other"}`;
  span.dataset.channelType = type || "";
  if (title) span.title = title;
  span.append(svg(PATHS[known ? type : "webchat"], "chan__icon", ""));
  return span;
}

/** Initials of a name in a coloured circle; the colour follows the name so a person keeps theirs. */
export function avatar(name, cls = "") {
  const words = String(name || "?").trim().split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
  const letters = words.length ? (words[0][0] + (words.length > 1 ? words[words.length - 1][0] : "")) : "?";
  let hash = 0;
  for (const ch of String(name || "")) hash = (hash * 31 + ch.codePointAt(0)) % 360;
  const el = document.createElement("span");
  el.className = `avatar avatar--h${Math.floor(hash / 45)} ${cls}`.trim();
  el.setAttribute("aria-hidden", "true");
  el.textContent = letters.toUpperCase();
  return el;
}
