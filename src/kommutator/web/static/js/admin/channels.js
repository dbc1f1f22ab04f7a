// The channel screens: the list, the type picker, the form drawn from each type's JSON Schema, and what a
// new channel's creator sees once (webhook URL, set-up steps, generated secrets).

import { get, patch, post } from "../api.js";
import { h } from "../dom.js";
import { has, t } from "../i18n.js";
import { healthBadge, healthSection } from "./channel-health.js";
import { signInSection } from "./channel-signin.js";
import { button, byId, checkbox, clearOnEdit, copyable, dash, field, formFooter, go, idOrNull, noticeBar,
  OUTBOUND_DISABLED, pageHead, queueOptions, reload, section, select, state, submitting, teamOptions, textInput, tx } from "./common.js";

// ---- channels: the list ----------------------------------------------------------------------------------

function typeTitle(type) {
  const found = (state.data.types || []).find((x) => x.type === type);
  return found ? found.title : type;
}

export function channelList() {
  const channels = state.data.channels || [];
  const head = pageHead("admin.channels.title", "admin.channels.lead",
    button("admin.channels.connect", () => go("pick"), "btn btn--primary", { props: { id: "channel-connect" } }));
  if (!channels.length) {
    return h("div", { class: "admin__page" }, head, noticeBar(),
      h("div", { class: "card empty-card" }, tx("p", "admin.channels.empty")));
  }
  const table = h("table", { class: "table", id: "channel-table" },
    h("thead", {}, h("tr", {}, ...["admin.col.name", "admin.col.type", "admin.col.status", "admin.col.health", "admin.col.team",
      "admin.col.queue", "admin.col.webhook", "admin.col.actions"].map((k) => tx("th", k, null, { attrs: { scope: "col" } })))),
    h("tbody", {}, ...channels.map(channelRow)));
  return h("div", { class: "admin__page" }, head, noticeBar(), h("div", { class: "card table-wrap" }, table));
}

function channelRow(c) {
  const team = byId(state.data.teams, c.team_id);
  const queue = byId(state.data.queues, c.queue_id);
  const stopped = c.settings && c.settings.outbound_disabled;
  return h("tr", { class: ["channel-row", c.enabled ? "" : "row--off"], dataset: { channelId: c.id } },
    h("td", {},
      h("span", { class: "cell-title channel-row__name", text: c.name }),
      h("span", { class: "cell-sub", text: `#${c.id}` }),
      stopped ? tx("span", "admin.channel.outboundStopped", null,
        { class: "badge badge--warn", attrs: { title: String(stopped) } }) : null),
    h("td", { class: "channel-row__type" }, h("span", { class: "type-tag", text: typeTitle(c.type) })),
    h("td", {}, tx("span", c.enabled ? "admin.enabled" : "admin.disabled", null,
      { class: ["badge", c.enabled ? "badge--resolved" : "badge--other", "channel-row__enabled"] })),
    h("td", { class: "channel-row__health" }, healthBadge(c.health)),
    h("td", { class: "channel-row__team" }, team ? team.name : dash()),
    h("td", { class: "channel-row__queue" }, queue ? queue.name : dash()),
    h("td", { class: "channel-row__webhook" }, c.webhook_url ? copyable(c.webhook_url, "url") : dash()),
    h("td", { class: "cell-actions" },
      button("admin.edit", () => editChannel(c), "btn btn--small channel-edit"),
      button(c.enabled ? "admin.disable" : "admin.enable", (e) => toggleChannel(c, e.currentTarget),
        "btn btn--small channel-toggle")));
}

async function toggleChannel(c, btn) {
  btn.disabled = true;
  try {
    await patch(`/channels/${c.id}`, { enabled: !c.enabled });
    state.notice = { key: c.enabled ? "admin.channel.disabledDone" : "admin.channel.enabledDone", params: { name: c.name } };
    state.onChannelsChanged();
    await reload({ force: true });
  } catch (err) {
    state.onError(err);
    btn.disabled = false;
  }
}

function editChannel(c) {
  const type = (state.data.types || []).find((x) => x.type === c.type) || { type: c.type, title: c.type,
    settings_schema: { properties: {} }, credentials_schema: { properties: {} } };
  go("edit", { editing: c, type });
}

// ---- channels: connecting one --------------------------------------------------------------------------------

export function typePicker() {
  const types = state.data.types || [];
  return h("div", { class: "admin__page" },
    pageHead("admin.connect.title", "admin.connect.lead", button("admin.cancel", () => go("list"), "btn")),
    h("div", { class: "type-grid", id: "type-picker" }, ...types.map((tp, i) => h("button", {
      class: "type-card", type: "button", dataset: i === 0 ? { type: tp.type, autofocus: "1" } : { type: tp.type },
      on: { click: () => go("create", { type: tp, editing: null }) },
    },
    h("span", { class: "type-card__title", text: tp.title }),
    h("code", { class: "type-card__code", text: tp.type }),
    tx("span", "admin.connect.fields", { n: countFields(tp) }, { class: "type-card__meta" })))));
}

function countFields(tp) {
  return Object.keys(tp.settings_schema.properties || {}).length
    + Object.keys(tp.credentials_schema.properties || {}).length;
}

/** A schema property with nullability (anyOf […, null]) and references ($ref, allOf) resolved. */
function resolveProp(schema, prop) {
  const deref = (p) => {
    const ref = p.$ref || (Array.isArray(p.allOf) && p.allOf.length === 1 && p.allOf[0].$ref);
    if (!ref) return p;
    const name = String(ref).split("/").pop();
    return { ...((schema.$defs || schema.definitions || {})[name] || {}), ...p };
  };
  let p = deref(prop);
  let nullable = false;
  if (Array.isArray(p.anyOf)) {
    const others = p.anyOf.filter((x) => x.type !== "null");
    nullable = others.length < p.anyOf.length;
    if (others.length === 1) p = { ...deref(others[0]), title: p.title, description: p.description, default: p.default };
  }
  return { ...p, nullable };
}

function controlFor(p, value, { secret, id }) {
  if (secret) {
    const input = h("input", { type: "password", id, value: "", attrs: { autocomplete: "new-password", spellcheck: "false" } });
    return input;
  }
  if (Array.isArray(p.enum)) {
    const opts = p.enum.map((v) => ({ value: String(v), text: String(v) }));
    if (p.nullable || value === undefined || value === null) opts.unshift({ value: "", key: "admin.schema.unset" });
    return select(opts, value, { id });
  }
  if (p.type === "array" && p.items && Array.isArray(p.items.enum)) {
    const chosen = new Set((Array.isArray(value) ? value : []).map(String));
    return h("div", { class: "choice-group", id, attrs: { role: "group" } }, ...p.items.enum.map((v) =>
      h("label", { class: "toggle" }, h("input", { type: "checkbox", value: String(v), checked: chosen.has(String(v)) }),
        h("span", { text: String(v) }))));
  }
  if (p.type === "integer" || p.type === "number") {
    return textInput(value, { id, min: p.minimum ?? null, max: p.maximum ?? null, step: p.type === "integer" ? 1 : "any",
      inputmode: p.type === "integer" ? "numeric" : "decimal" }, "number");
  }
  if (p.type === "array") {
    return textInput(Array.isArray(value) ? value.join(", ") : value, { id, placeholder: "a, b" });
  }
  if (p.type === "object") {
    return h("textarea", { id, rows: 3, value: value ? JSON.stringify(value) : "", attrs: { spellcheck: "false" } });
  }
  const type = p.format === "uri" ? "url" : (p.format === "email" ? "email" : "text");
  return textInput(value, { id, maxlength: p.maxLength ?? null, spellcheck: "false" }, type);
}

/** Fields for one JSON Schema object (settings or credentials); values prefill them. */
function schemaFields(group, schema, values, { secret = false, editing = false, stored = [] } = {}) {
  const required = new Set(schema.required || []);
  const generated = new Set(state.type.generated_credentials || []);
  const fields = [];
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const p = resolveProp(schema, raw);
    const id = `ch-${group}-${name}`;
    const path = `${group}.${name}`;
    const value = values && name in values ? values[name] : (editing || secret ? undefined : p.default);
    if (!secret && name === OUTBOUND_DISABLED) continue;
    // The types do not say which secrets the server generates (see the report); a required secret whose
    // description does not tell the administrator where to get it is one the server makes.
    const mayBeGenerated = secret && !editing && (generated.has(name) || !p.description
      || /generated by the server/i.test(p.description));
    let hintText = p.description || "";
    if (p.type === "boolean" && !secret) {
      fields.push(h("div", { class: "schema-field", dataset: { name, kind: "boolean", group } },
        checkbox({ labelText: p.title || name, checked: value === undefined ? Boolean(p.default) : Boolean(value), id,
          path, hintText })));
      continue;
    }
    const control = controlFor(p, value, { secret, id });
    const kind = secret ? "secret" : (Array.isArray(p.enum) ? "enum"
      : (p.type === "array" && p.items && Array.isArray(p.items.enum) ? "multi" : (p.type || "string")));
    const extras = [];
    if (secret) {
      if (editing) {
        extras.push(tx("span", stored.includes(name) ? "admin.secret.stored" : "admin.secret.notStored", null,
          { class: ["chip", stored.includes(name) ? "chip--ok" : ""] }));
        control.dataset.i18nPlaceholder = "admin.secret.keep";
        control.placeholder = t("admin.secret.keep");
      } else if (mayBeGenerated) {
        control.dataset.i18nPlaceholder = "admin.secret.generate";
        control.placeholder = t("admin.secret.generate");
      }
      const reveal = tx("button", "admin.secret.show", null, { class: "btn btn--small btn--ghost", type: "button" });
      reveal.addEventListener("click", () => {
        const showing = control.type === "text";
        control.type = showing ? "password" : "text";
        reveal.dataset.i18n = showing ? "admin.secret.show" : "admin.secret.hide";
        reveal.textContent = t(reveal.dataset.i18n);
      });
      extras.push(reveal);
    }
    const box = field({ labelText: p.title || name, name, input: control,
      control: secret ? h("div", { class: "secret-input" }, control, ...extras) : control,
      hintText, required: required.has(name) && !editing && !mayBeGenerated, path });
    fields.push(h("div", { class: "schema-field", dataset: { name, kind, group } }, box));
  }
  return fields;
}

/** Read a schema group back from the form: blank fields are left out (defaults apply; secrets are kept). */
function collectGroup(form, group, schema) {
  const out = {};
  for (const wrap of form.querySelectorAll(`.schema-field[data-group="${group}"]`)) {
    const name = wrap.dataset.name;
    const kind = wrap.dataset.kind;
    const p = resolveProp(schema, (schema.properties || {})[name] || {});
    if (kind === "boolean") {
      out[name] = wrap.querySelector("input").checked;
    } else if (kind === "multi") {
      const chosen = [...wrap.querySelectorAll("input:checked")].map((x) => x.value);
      if (chosen.length) out[name] = chosen.map((v) => p.items.enum.find((e) => String(e) === v) ?? v);
    } else {
      const control = wrap.querySelector("input, select, textarea");
      const raw = kind === "secret" ? control.value : control.value.trim();
      if (raw === "") continue;
      if (kind === "enum") out[name] = p.enum.find((e) => String(e) === raw) ?? raw;
      else if (kind === "integer" || kind === "number") out[name] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
      else if (kind === "array") out[name] = raw.split(",").map((x) => x.trim()).filter(Boolean);
      else if (kind === "object") {
        try {
          out[name] = JSON.parse(raw);
        } catch {
          out[name] = raw;
        }
      } else out[name] = raw;
    }
  }
  return out;
}

export function channelForm() {
  const tp = state.type;
  const c = state.editing;
  const editing = Boolean(c);
  const name = textInput(editing ? c.name : "", { maxlength: 100, id: "channel-name", "data-autofocus": "1", autocomplete: "off" });
  const team = select(teamOptions("admin.channel.noTeam"), editing ? c.team_id : "", { id: "channel-team" });
  const queue = select(queueOptions(), editing ? c.queue_id : "", { id: "channel-queue" });
  const settingsFields = schemaFields("settings", tp.settings_schema, editing ? c.settings : null, { editing });
  const secretFields = schemaFields("credentials", tp.credentials_schema, null,
    { secret: true, editing, stored: editing ? c.credential_fields : [] });
  const stopped = editing && c.settings ? c.settings[OUTBOUND_DISABLED] : "";
  const form = h("form", { class: "admin-form", id: "channel-form", noValidate: true, dataset: { type: tp.type } },
    stopped ? h("div", { class: "stopped", id: "outbound-stopped", attrs: { role: "alert" } },
      tx("p", "admin.channel.stoppedTitle", null, { class: "stopped__title" }),
      h("p", { class: "stopped__reason", text: String(stopped) }),
      tx("p", "admin.channel.stoppedHint", null, { class: "stopped__hint" })) : null,
    section("admin.channel.general", null, h("div", { class: "form-grid" },
      field({ key: "admin.channel.name", control: name, required: true, path: "name", hintKey: "admin.channel.nameHint" }),
      field({ key: "admin.channel.team", control: team, path: "team_id", hintKey: "admin.channel.teamHint" }),
      field({ key: "admin.channel.queue", control: queue, path: "queue_id", hintKey: "admin.channel.queueHint" }),
      checkbox({ key: "admin.channel.enabled", checked: editing ? c.enabled : true, id: "channel-enabled", path: "enabled",
        hintKey: "admin.channel.enabledHint" }))),
    section("admin.channel.settings", null, settingsFields.length
      ? h("div", { class: "form-grid" }, ...settingsFields) : tx("p", "admin.channel.noSettings", null, { class: "muted" })),
    section("admin.channel.secrets", editing ? "admin.channel.secretsEditLead" : "admin.channel.secretsLead",
      secretFields.length ? h("div", { class: "form-grid" }, ...secretFields)
        : tx("p", "admin.channel.noSecrets", null, { class: "muted" })),
    formFooter(editing ? "admin.save" : "admin.channels.connectSubmit", () => go(editing ? "list" : "pick")));
  clearOnEdit(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitting(form, async () => {
      const settings = collectGroup(form, "settings", tp.settings_schema);
      const credentials = collectGroup(form, "credentials", tp.credentials_schema);
      const common = { name: name.value.trim(), team_id: idOrNull(team.value), queue_id: idOrNull(queue.value),
        enabled: form.querySelector("#channel-enabled").checked, settings };
      if (editing) {
        const body = { ...common };
        if (Object.keys(credentials).length) body.credentials = credentials;
        const saved = await patch(`/channels/${c.id}`, body);
        state.notice = { key: "admin.channel.saved", params: { name: saved.name } };
        state.onChannelsChanged();
        state.mode = "list";
        await reload({ force: true });
      } else {
        const created = await post("/channels", { type: tp.type, ...common, credentials });
        state.onChannelsChanged();
        const generated = created.generated_credentials || {};
        delete created.generated_credentials;
        go("result", { result: { channel: created, generated } });
        reload({ force: false });
      }
    });
  });
  const titleKey = editing ? "admin.channel.editTitle" : "admin.channel.newTitle";
  const head = h("header", { class: "admin__head" },
    h("div", { class: "admin__titles" },
      tx("h2", titleKey, { name: editing ? c.name : tp.title }, { class: "admin__title" }),
      h("p", { class: "admin__lead" }, h("span", { class: "type-tag", text: tp.title }), " ",
        tx("span", editing ? "admin.channel.editLead" : "admin.channel.newLead"))),
    h("div", { class: "admin__actions" }, button("admin.back", () => go("list"), "btn")));
  const side = editing ? h("aside", { class: "card side-card" },
    healthSection(c),
    signInSection(c),
    c.webhook_url ? tx("h3", "admin.channel.webhook", null, { class: "side-card__title" }) : null,
    c.webhook_url ? copyable(c.webhook_url, "url") : null,
    tx("h3", "admin.channel.setup", null, { class: "side-card__title" }),
    h("p", { class: "setup-text", text: setupText(c.setup) })) : null;
  return h("div", { class: "admin__page" }, head, h("div", { class: editing ? "form-layout" : "form-layout form-layout--single" },
    h("div", { class: "card" }, form), side));
}

/** Set-up steps as text; numbered steps written on one line ("… 2. Register …") start a new line. */
function setupText(text) {
  const value = String(text || "");
  return value.includes("\n") ? value : value.replace(/([.!?:]) (?=\d{1,2}\. [A-ZА-ЯЁ])/g, "$1\n");
}

export function createdView() {
  const { channel, generated } = state.result;
  const secrets = Object.entries(generated || {});
  const done = button("admin.created.done", () => {
    state.result = null;
    go("list");
  }, "btn btn--primary", { props: { id: "created-done" } });
  return h("div", { class: "admin__page" },
    h("div", { class: "card created", id: "channel-created", dataset: { channelId: channel.id } },
      h("div", { class: "created__head" },
        h("span", { class: "created__icon", attrs: { "aria-hidden": "true" }, text: "✓" }),
        h("div", {}, tx("h2", "admin.created.title", null, { class: "admin__title" }),
          h("p", { class: "admin__lead" }, h("span", { class: "created__name", text: channel.name }), " · ",
            h("span", { class: "type-tag", text: typeTitle(channel.type) })))),
      secrets.length ? h("div", { class: "secret-box", id: "generated-secrets", attrs: { role: "alert" } },
        tx("p", "admin.created.secretsWarning", null, { class: "secret-box__warning" }),
        h("dl", { class: "secret-list" }, ...secrets.flatMap(([key, value]) => [
          h("dt", { text: key }),
          h("dd", { dataset: { secret: key } }, copyable(String(value), "secret-value")),
        ]))) : null,
      channel.webhook_url ? tx("h3", "admin.channel.webhook", null, { class: "created__subtitle" }) : null,
      channel.webhook_url ? h("div", { id: "created-webhook" }, copyable(channel.webhook_url, "url")) : null,
      tx("h3", "admin.channel.setup", null, { class: "created__subtitle" }),
      h("p", { class: "setup-text", id: "created-setup", text: setupText(channel.setup) }),
      h("div", { class: "form-footer__buttons" }, done)));
}
