// "New conversation": an agent writes first to a customer — from the top bar (find the customer) or from the
// customer card. The channel is the customer's preferred one or one chosen; the server checks each channel's
// rule as the agent types (POST /conversations/preview) and says in the agent's language what forbids it
// (WhatsApp's 24-hour window, a bot the customer never wrote to, an email without a subject), and how an SMS
// travels (GSM-7 or UCS-2, segments). Every value from the server goes into the page as text.

import { ApiError, get, post } from "./api.js";
import { h } from "./dom.js";
import { lang, t, tx } from "./i18n.js";
import "./texts/outbound.js";

const CHECK_DELAY_MS = 300;
let dialog = null;

/** The server's sentence in the agent's language (both come with a channel rule's refusal). */
export function sentence(err) {
  if (err instanceof ApiError) {
    if (err.sentences && err.sentences[lang()]) return err.sentences[lang()];
    if (err.status === 0) return t("error.network");
    return err.detail || t("error.generic", { status: err.status });
  }
  return String((err && err.message) || err);
}

function labelled(key, control) {
  control.id = control.id || `out-${key.replace(/\W/g, "-")}`;
  return h("div", { class: "field" }, h("label", { class: "field__label", attrs: { for: control.id } }, tx("span", key)),
    control);
}

/**
 * Open the dialog. contact: the customer (or null: the agent finds one); channels: () => Map of id -> channel;
 * onStarted(conversationId) opens the new conversation; onError(err) handles a lost session.
 */
export function openStartDialog({ contact, channels, onStarted, onError }) {
  if (dialog) dialog.close();
  const chosen = { contact, templates: [], checkTimer: null, checkSeq: 0 };
  const error = h("p", { class: "form-error", id: "out-error", attrs: { role: "alert" }, hidden: true });
  const check = h("p", { class: "field__hint", id: "out-check", attrs: { "aria-live": "polite" } });
  const who = h("div", { class: "out__contact", id: "out-contact" });
  const channel = h("select", { id: "out-channel" });
  const mode = h("select", { id: "out-mode" },
    tx("option", "out.mode.text", null, { value: "text" }), tx("option", "out.mode.template", null, { value: "template" }));
  const template = h("select", { id: "out-template" });
  const params = h("div", { class: "out__params", id: "out-params" });
  // A refusal naming the template or its parameters (422 template_parameters_missing, …) shows here.
  const paramsError = h("p", { class: "field__error", id: "out-params-error", attrs: { role: "alert" }, hidden: true });
  const text = h("textarea", { id: "out-text", rows: 4, attrs: { maxlength: 20000 } });
  const subject = h("input", { id: "out-subject", type: "text", attrs: { maxlength: 300 } });
  const textField = labelled("out.text", text);
  const templateField = h("div", { class: "out__template" }, labelled("out.template", template), params, paramsError);
  templateField.hidden = true;
  const submit = tx("button", "out.send", null, { class: "btn btn--primary form-submit", type: "submit", id: "out-send" });

  function showError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  /** Show a refusal beside the template's parameters when it names them; true when it did. */
  function showParamsError(err) {
    const named = err instanceof ApiError && err.errors.length ? String(err.errors[0].field) : "";
    const mine = mode.value === "template" && ["parameters", "template"].includes(named);
    paramsError.textContent = mine ? sentence(err) : "";
    paramsError.hidden = !mine;
    templateField.classList.toggle("field--invalid", mine);
    return mine;
  }

  function fillChannels() {
    const c = chosen.contact;
    const preferredLabel = c && c.preferred_channel
      ? t("out.channel.preferredIs", { type: c.preferred_channel }) : t("out.channel.preferred");
    const options = [h("option", { value: "preferred", text: preferredLabel })];
    for (const ch of channels().values()) {
      if (ch.enabled === false) continue;
      options.push(h("option", { value: String(ch.id), text: `${ch.name} (${ch.type})` }));
    }
    const keep = channel.value;
    channel.replaceChildren(...options);
    if ([...channel.options].some((o) => o.value === keep)) channel.value = keep;
  }

  function fillParams() {
    const tpl = chosen.templates.find((x) => String(x.id) === template.value);
    params.replaceChildren(...(tpl ? tpl.parameters : []).map((name) => {
      const box = h("input", { type: "text", id: `out-param-${name}`, dataset: { param: name } });
      box.addEventListener("input", scheduleCheck);
      return h("div", { class: "field" }, h("label", { class: "field__label", attrs: { for: box.id }, text: name }), box);
    }));
  }

  function body() {
    const data = { contact_id: chosen.contact ? chosen.contact.id : 0, channel: channel.value, subject: subject.value };
    if (mode.value === "template") {
      const tpl = chosen.templates.find((x) => String(x.id) === template.value);
      data.template = tpl ? tpl.name : "";
      data.language = tpl ? tpl.language : undefined;
      data.parameters = Object.fromEntries([...params.querySelectorAll("[data-param]")]
        .map((i) => [i.dataset.param, i.value]));
    } else {
      data.text = text.value;
    }
    return data;
  }

  function scheduleCheck() {
    clearTimeout(chosen.checkTimer);
    chosen.checkTimer = setTimeout(runCheck, CHECK_DELAY_MS);
  }

  async function runCheck() {
    const data = body();
    if (!chosen.contact || (mode.value === "text" ? !text.value.trim() : !data.template)) {
      check.textContent = "";
      return;
    }
    const seq = ++chosen.checkSeq;
    try {
      const result = await post("/conversations/preview", data);
      if (seq !== chosen.checkSeq) return;
      showParamsError(null);
      check.dataset.allowed = String(result.allowed);
      const parts = [];
      if (result.allowed) parts.push(t("out.check.ok", { type: result.channel_type }));
      else parts.push((result.sentences && result.sentences[lang()]) || result.detail);
      if (result.measure && result.measure.segments) parts.push(t("out.check.sms", result.measure));
      check.textContent = parts.join(" ");
    } catch (err) {
      if (seq !== chosen.checkSeq) return;
      check.dataset.allowed = "false";
      check.textContent = sentence(err);
      showParamsError(err);
    }
  }

  function showContact() {
    if (chosen.contact) {
      const c = chosen.contact;
      who.replaceChildren(h("strong", { class: "out__name", text: c.name || c.phone || c.email || `#${c.id}` }),
        contact ? null : h("button", { class: "btn btn--small btn--ghost", type: "button", id: "out-contact-change",
          dataset: { i18n: "out.contact.change" }, text: t("out.contact.change"),
          on: { click: () => { chosen.contact = null; showContact(); } } }));
      fillChannels();
      scheduleCheck();
      return;
    }
    const search = h("input", { type: "search", id: "out-search", attrs: { placeholder: t("out.contact.search") } });
    const results = h("ul", { class: "out__results", id: "out-results" });
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = search.value.trim();
        if (q.length < 2) { results.replaceChildren(); return; }
        try {
          const page = await get(`/contacts?limit=10&q=${encodeURIComponent(q)}`);
          results.replaceChildren(...(page.items.length ? page.items.map((c) => h("li", {},
            h("button", { type: "button", class: "btn btn--small btn--ghost out__pick", dataset: { contactId: c.id },
              text: [c.name, c.phone, c.email].filter(Boolean).join(" · ") || `#${c.id}`,
              on: { click: () => { chosen.contact = c; showContact(); } } })))
            : [tx("li", "out.contact.none", null, { class: "muted" })]));
        } catch (err) {
          showError(sentence(err));
        }
      }, 250);
    });
    who.replaceChildren(labelled("out.contact", search), results);
    fillChannels();
    setTimeout(() => search.focus(), 0);
  }

  mode.addEventListener("change", () => {
    const useTemplate = mode.value === "template";
    templateField.hidden = !useTemplate;
    textField.hidden = useTemplate;
    scheduleCheck();
  });
  template.addEventListener("change", () => { fillParams(); scheduleCheck(); });
  for (const control of [channel, text, subject]) control.addEventListener("input", scheduleCheck);
  channel.addEventListener("change", scheduleCheck);

  const form = h("form", { class: "kdialog__form", attrs: { novalidate: true, method: "dialog" },
    on: { submit: async (event) => {
      event.preventDefault();
      if (!chosen.contact) { showError(t("out.pickContact")); return; }
      if (submit.disabled) return;
      submit.disabled = true;
      showError("");
      try {
        const started = await post("/conversations", body());
        dialog.close();
        onStarted(started.conversation_id);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) { dialog.close(); onError(err); return; }
        showError(sentence(err));
        showParamsError(err);
      } finally {
        submit.disabled = false;
      }
    } } },
  h("header", { class: "kdialog__head" },
    contact ? tx("h2", "out.title.with", { name: contact.name || `#${contact.id}` }, { class: "kdialog__title",
      id: "out-title" }) : tx("h2", "out.title", null, { class: "kdialog__title", id: "out-title" }),
    h("button", { class: "banner__close", type: "button", attrs: { "aria-label": "×" }, text: "×",
      on: { click: () => dialog.close() } })),
  h("div", { class: "kdialog__body" }, who, labelled("out.channel", channel), labelled("out.mode", mode),
    templateField, textField, labelled("out.subject", subject), check),
  h("div", { class: "form-footer kdialog__foot" }, error, h("div", { class: "form-footer__buttons" }, submit)));
  dialog = h("dialog", { class: "kdialog", id: "start-dialog", attrs: { "aria-labelledby": "out-title" } }, form);
  dialog.addEventListener("close", () => { dialog.remove(); dialog = null; });
  document.body.append(dialog);
  dialog.showModal();
  showContact();
  get("/message-templates").then((list) => {
    chosen.templates = list.items;
    template.replaceChildren(...(list.items.length ? list.items.map((x) => h("option", { value: String(x.id),
      text: `${x.name} (${x.language})${x.approved ? "" : " ✗"}` })) : [tx("option", "out.template.none", null, { value: "" })]));
    fillParams();
  }).catch(() => {});
  if (contact) setTimeout(() => text.focus(), 0);
}
