// The knowledge-base editor (#kb, supervisors and administrators): the articles (drafts and published) with their
// language and state; create, edit the text with a live preview drawn as the help page draws it (paragraphs,
// lists, headings — knowledge/render.py), publish or take back to draft, delete. Over /api/v1/knowledge.

import "./texts/directory.js";
import { api, get, post } from "./api.js";
import { h } from "./dom.js";
import { lang, t } from "./i18n.js";
import { standaloneSection } from "./section.js";

const isSupervisor = (me) => me.role === "admin" || me.role === "supervisor";
const state = { view: null, mode: "list", articles: [], article: null, notice: null, seq: 0 };

const BULLET = /^\s*[-*•]\s+(.*)$/;
const NUMBER = /^\s*\d{1,3}[.)]\s+(.*)$/;
const HEADING = /^\s*(#{1,3})\s+(.*)$/;

/** The body as the help page shows it, built from text nodes (the same rules as knowledge/render.py). */
export function previewNodes(body) {
  const out = [];
  let paragraph = [];
  let items = [];
  let kind = "";
  const close = () => {
    if (paragraph.length) {
      out.push(h("p", {}, ...paragraph.flatMap((line, i) => (i ? [h("br"), line] : [line]))));
      paragraph = [];
    }
    if (items.length) {
      out.push(h(kind, {}, ...items.map((i) => h("li", { text: i }))));
      items = [];
    }
    kind = "";
  };
  for (const raw of String(body || "").split("\n")) {
    const line = raw.trim();
    const bullet = BULLET.exec(line);
    const number = NUMBER.exec(line);
    const heading = HEADING.exec(line);
    if (!line) close();
    else if (heading) {
      close();
      out.push(h(heading[1].length <= 2 ? "h2" : "h3", { text: heading[2] }));
    } else if (bullet || number) {
      const want = bullet ? "ul" : "ol";
      if (paragraph.length || kind !== want) close();
      kind = want;
      items.push((bullet || number)[1]);
    } else if (items.length) items[items.length - 1] += ` ${line}`;
    else paragraph.push(line);
  }
  close();
  return out;
}

function notice() {
  return state.notice ? h("p", { class: "notice kbe-notice", attrs: { role: "status" }, text: t(state.notice) }) : null;
}

function statusChip(status) {
  return h("span", { class: ["badge", `kbe-status--${status}`], dataset: { status }, text: t(`kbe.status.${status}`) });
}

async function showList() {
  state.mode = "list";
  const seq = ++state.seq;
  let page;
  try {
    page = await get("/knowledge/articles?limit=100");
  } catch (err) {
    state.view.replaceChildren(h("p", { class: "form-error", text: String(err.detail || err.message || err) }));
    return;
  }
  if (seq !== state.seq || state.view.hidden) return; // the user went elsewhere meanwhile
  state.articles = page.items;
  drawList();
}

function drawList() {
  const day = new Intl.DateTimeFormat(lang(), { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  const rows = state.articles.map((a) => h("tr", { class: "kbe-row", dataset: { articleId: a.id } },
    h("td", {}, h("button", { class: "linklike kbe-open", attrs: { type: "button" }, text: a.title,
      on: { click: () => openArticle(a.id) } })),
    h("td", { text: t(`kbe.lang.${a.language}`) }),
    h("td", {}, statusChip(a.status)),
    h("td", { text: day.format(new Date(a.updated_at)) })));
  state.view.replaceChildren(h("div", { class: "admin__page" },
    h("header", { class: "admin__head" },
      h("div", { class: "admin__titles" }, h("h2", { class: "admin__title", text: t("kbe.title") }),
        h("p", { class: "admin__lead", text: t("kbe.lead") })),
      h("div", { class: "admin__actions" }, h("button", { class: "btn btn--primary", attrs: { type: "button",
        id: "kbe-new" }, text: t("kbe.new"), on: { click: () => openArticle(null) } }))),
    notice(),
    rows.length ? h("div", { class: "card table-wrap" }, h("table", { class: "table", attrs: { id: "kbe-table" } },
      h("thead", {}, h("tr", {}, ["kbe.col.title", "kbe.col.language", "kbe.col.status", "kbe.col.updated"]
        .map((k) => h("th", { text: t(k) })))),
      h("tbody", {}, rows))) : h("div", { class: "card empty-card" }, h("p", { text: t("kbe.empty") }))));
}

async function openArticle(id) {
  state.notice = null;
  if (id === null) {
    state.article = { id: null, title: "", language: lang(), category: "", tags: [], body: "", status: "draft" };
  } else {
    try {
      state.article = await get(`/knowledge/articles/${id}`);
    } catch (err) {
      state.notice = null;
      state.view.prepend(h("p", { class: "form-error", text: String(err.detail || err.message || err) }));
      return;
    }
  }
  if (state.view.hidden) return;
  state.mode = "edit";
  drawEditor();
}

function field(key, control, hintKey = "") {
  return h("label", { class: "field" }, h("span", { class: "field__label", text: t(key) }), control,
    hintKey ? h("span", { class: "field__hint", text: t(hintKey) }) : null);
}

function drawEditor() {
  const a = state.article;
  const f = {
    title: h("input", { attrs: { id: "kbe-title", maxlength: 300, required: true }, value: a.title }),
    language: h("select", { attrs: { id: "kbe-language" } },
      ["ru", "en"].map((x) => h("option", { attrs: { value: x, selected: a.language === x }, text: t(`kbe.lang.${x}`) }))),
    category: h("input", { attrs: { id: "kbe-category", maxlength: 100 }, value: a.category || "" }),
    tags: h("input", { attrs: { id: "kbe-tags", maxlength: 400 }, value: (a.tags || []).join(", ") }),
    body: h("textarea", { attrs: { id: "kbe-body", rows: 16, maxlength: 30000 }, value: a.body || "" }),
  };
  const preview = h("div", { class: "kbe-preview help-article", attrs: { id: "kbe-preview", "aria-live": "polite" } });
  const drawPreview = () => preview.replaceChildren(...previewNodes(f.body.value));
  f.body.addEventListener("input", drawPreview);
  drawPreview();
  const error = h("p", { class: "form-error", attrs: { role: "alert", id: "kbe-error" }, hidden: true });
  const body = (status) => {
    const out = { title: f.title.value.trim(), language: f.language.value, category: f.category.value.trim(),
      tags: f.tags.value.split(",").map((x) => x.trim()).filter(Boolean), body: f.body.value };
    if (status) out.status = status;
    return out;
  };
  const save = async (status, noticeKey) => {
    error.hidden = true;
    try {
      state.article = a.id === null ? await post("/knowledge/articles", body(status))
        : await api("PATCH", `/knowledge/articles/${a.id}`, body(status));
      state.notice = noticeKey;
      drawEditor();
    } catch (err) {
      error.textContent = String(err.detail || err.message || err);
      error.hidden = false;
    }
  };
  const remove = async () => {
    if (!window.confirm(t("kbe.confirmDelete", { title: a.title }))) return;
    try {
      await api("DELETE", `/knowledge/articles/${a.id}`);
      state.notice = "kbe.deleted";
      showList();
    } catch (err) {
      error.textContent = String(err.detail || err.message || err);
      error.hidden = false;
    }
  };
  const published = a.status === "published";
  state.view.replaceChildren(h("div", { class: "admin__page" },
    h("header", { class: "admin__head" },
      h("div", { class: "admin__titles" }, h("h2", { class: "admin__title", text: a.id === null ? t("kbe.new") : a.title }),
        a.id === null ? null : h("p", { class: "admin__lead" }, statusChip(a.status),
          a.help_path ? h("a", { attrs: { href: a.help_path, target: "_blank", rel: "noopener" }, text: ` ${a.help_path}` })
            : null)),
      h("div", { class: "admin__actions" }, h("button", { class: "btn", attrs: { type: "button", id: "kbe-back" },
        text: t("kbe.back"), on: { click: () => { state.notice = null; showList(); } } }))),
    notice(),
    h("form", { class: "kbe-form", attrs: { id: "kbe-form" }, on: { submit: (e) => { e.preventDefault(); save(null, "kbe.saved"); } } },
      h("div", { class: "kbe-fields" }, field("kbe.f.title", f.title), field("kbe.f.language", f.language),
        field("kbe.f.category", f.category), field("kbe.f.tags", f.tags, "kbe.f.tagsHint")),
      h("div", { class: "kbe-split" },
        field("kbe.f.body", f.body, "kbe.f.bodyHint"),
        h("section", { class: "kbe-preview-box" }, h("h3", { class: "field__label", text: t("kbe.preview") }), preview)),
      error,
      h("div", { class: "kbe-actions" },
        h("button", { class: "btn btn--primary", attrs: { type: "submit", id: "kbe-save" }, text: t("kbe.save") }),
        h("button", { class: "btn", attrs: { type: "button", id: "kbe-publish" },
          text: t(published ? "kbe.unpublish" : "kbe.publish"),
          on: { click: () => save(published ? "draft" : "published", published ? "kbe.unpublished" : "kbe.published") } }),
        a.id === null ? null : h("button", { class: "btn btn--danger", attrs: { type: "button", id: "kbe-delete" },
          text: t("kbe.delete"), on: { click: remove } })))));
}

standaloneSection({
  name: "kb",
  navKey: "kbe.nav",
  allowed: isSupervisor,
  build: (view) => { state.view = view; },
  shown: () => { state.notice = null; state.seq += 1; showList(); },
  langChanged: () => { if (state.mode === "list") drawList(); },
});
