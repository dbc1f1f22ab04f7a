/* Kommutator website chat: <script src="https://SERVER/widget.js" data-channel="ID" async></script>
   One classic script, no build step. The UI lives in an open shadow root (styles cannot leak either way);
   every text from a customer or an agent is set with textContent, never parsed as HTML. Messages typed while
   offline wait in a local outbox (localStorage) and are sent with the same client id until the server
   acknowledges them, so a flaky connection neither loses nor doubles them. */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || !script.dataset.channel || window.__kommutatorChat) return;
  window.__kommutatorChat = true;
  const channel = script.dataset.channel;
  const base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  const wsBase = base.replace(/^http/, "ws");
  const KEY = `kommutator.chat.${base}.${channel}`;

  const TEXTS = {
    en: { title: "Chat with us", greeting: "Hi! Ask us anything — we usually answer within minutes.",
      online: "We're online", offline: "We're away right now", typing: "{name} is typing…", someone: "Someone",
      placeholder: "Write a message…", send: "Send", attach: "Attach a file", close: "Close chat", open: "Open chat",
      sending: "Sending…", reconnecting: "Connection lost — reconnecting. Your messages will be sent.",
      prechatTitle: "Before we start", prechatText: "Tell us how to reach you.", name: "Name", email: "Email",
      phone: "Phone", start: "Start chat", offlineTitle: "Leave us a message",
      offlineText: "No one is available right now. Leave a message and your email — we'll reply by email.",
      message: "Message", leave: "Send message", thanks: "Thank you! We'll answer at {email}.",
      tooLarge: "{file} is too large: files may be at most {max} MB.", badType: "Files of this type cannot be sent.",
      failed: "Could not send: {reason}", download: "Download", agent: "Support", bot: "Assistant",
      fill: "Please fill in every field.", dismiss: "Dismiss" },
    ru: { title: "Напишите нам", greeting: "Здравствуйте! Задайте вопрос — обычно мы отвечаем за несколько минут.",
      online: "Мы на связи", offline: "Сейчас нас нет на месте", typing: "{name} печатает…", someone: "Оператор",
      placeholder: "Напишите сообщение…", send: "Отправить", attach: "Прикрепить файл", close: "Закрыть чат",
      open: "Открыть чат", sending: "Отправляется…",
      reconnecting: "Связь прервалась — переподключаемся. Ваши сообщения будут отправлены.",
      prechatTitle: "Перед началом", prechatText: "Расскажите, как с вами связаться.", name: "Имя", email: "Email",
      phone: "Телефон", start: "Начать чат", offlineTitle: "Оставьте сообщение",
      offlineText: "Сейчас никого нет на месте. Оставьте сообщение и email — мы ответим письмом.",
      message: "Сообщение", leave: "Отправить", thanks: "Спасибо! Мы ответим на {email}.",
      tooLarge: "Файл {file} слишком большой: не более {max} МБ.", badType: "Файлы такого типа отправить нельзя.",
      failed: "Не удалось отправить: {reason}", download: "Скачать", agent: "Поддержка", bot: "Помощник",
      fill: "Пожалуйста, заполните все поля.", dismiss: "Скрыть" },
  };
  let lang = "en";
  const t = (key, vars = {}) => (TEXTS[lang][key] || TEXTS.en[key]).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));

  // ---- storage: the token, the last message seen, the outbox ------------------------------------------------
  const load = () => { try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch { return {}; } };
  const saved = load();
  // The page's messages are held in memory: a new page loads the history, a reconnect only what it missed.
  let lastId = 0;
  const store = { token: saved.token || null, seenId: saved.seenId || 0,
    outbox: Array.isArray(saved.outbox) ? saved.outbox : [], open: !!saved.open };
  const persist = () => { try { localStorage.setItem(KEY, JSON.stringify(store)); } catch { /* private mode */ } };
  const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9_-]/g, "");

  // ---- DOM helpers (textContent only) ----------------------------------------------------------------------
  const el = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls;
    if (text != null) n.textContent = text; return n; };
  const SVG = "http://www.w3.org/2000/svg";
  const icon = (d) => { const s = document.createElementNS(SVG, "svg"); s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("fill", "none"); s.setAttribute("stroke", "currentColor"); s.setAttribute("stroke-width", "2");
    s.setAttribute("stroke-linecap", "round"); s.setAttribute("stroke-linejoin", "round");
    for (const part of d.split("|")) { const p = document.createElementNS(SVG, "path"); p.setAttribute("d", part); s.append(p); }
    return s; };
  const ICONS = { chat: "M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z", close: "M6 6l12 12|M18 6L6 18",
    send: "M22 2L11 13|M22 2l-7 20-4-9-9-4 20-7z", clip: "M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9",
    file: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z|M14 2v6h6" };

  const host = document.createElement("kommutator-chat");
  host.style.setProperty("all", "initial", "important");
  host.style.setProperty("display", "block", "important");
  const shadow = host.attachShadow({ mode: "open" });
  const root = el("div", "root");
  root.hidden = true; // until the styles are in
  shadow.append(root);

  const launcher = el("button", "launcher"); launcher.type = "button"; launcher.append(icon(ICONS.chat));
  const badge = el("span", "badge"); badge.hidden = true; launcher.append(badge);
  const panel = el("div", "panel"); panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", "kommutator-chat-title"); // the chat's title names the dialog
  root.append(panel, launcher);

  const head = el("div", "head");
  const avatar = el("div", "avatar"); const avatarText = el("span"); const dot = el("span", "dot"); avatar.append(avatarText, dot);
  const who = el("div", "who"); const titleEl = el("div", "title"); titleEl.id = "kommutator-chat-title"; const statusEl = el("div", "status"); who.append(titleEl, statusEl);
  const closeBtn = el("button", "icon-btn"); closeBtn.type = "button"; closeBtn.append(icon(ICONS.close));
  head.append(avatar, who, closeBtn);
  const body = el("div", "body"); body.setAttribute("aria-live", "polite");
  const list = el("div"); list.style.setProperty("display", "contents");
  const typingEl = el("div", "typing"); typingEl.hidden = true;
  const dots = el("span", "dots"); dots.append(el("i"), el("i"), el("i")); const typingText = el("span");
  typingEl.append(dots, typingText);
  const greetingEl = el("div", "greeting");
  body.append(greetingEl, list, typingEl);
  const composer = el("div", "composer");
  const errorEl = el("div", "error"); errorEl.hidden = true;
  const row = el("div", "row");
  const attachBtn = el("button", "icon-btn attach"); attachBtn.type = "button"; attachBtn.append(icon(ICONS.clip));
  const fileInput = el("input"); fileInput.type = "file"; fileInput.hidden = true;
  const input = el("textarea"); input.rows = 1;
  const sendBtn = el("button", "send"); sendBtn.type = "submit"; sendBtn.append(icon(ICONS.send));
  row.append(attachBtn, fileInput, input, sendBtn);
  const connEl = el("div", "conn"); connEl.hidden = true;
  composer.append(errorEl, row, connEl, el("div", "brand", "Kommutator"));
  const formView = el("div", "form"); formView.hidden = true;
  panel.append(head, body, formView, composer);

  // ---- state ---------------------------------------------------------------------------------------------
  let config = null, visitor = null, missing = [], online = true, agentName = "", socket = null, ready = false;
  let retry = 1000, retryTimer = null, typingUntil = 0, typingOff = null, agentTypingTimer = null, offlineSent = null;
  const messages = new Map();   // id -> message from the server
  const uploads = [];            // files waiting to be sent (not persistable)
  const previews = new Map();    // attachment id -> Promise of a blob URL

  async function api(path, { method = "GET", json, form } = {}) {
    const headers = {};
    if (store.token) headers.authorization = `Bearer ${store.token}`;
    if (json) headers["content-type"] = "application/json";
    const r = await fetch(`${base}/widget/${channel}${path}`, { method, headers, credentials: "omit",
      body: json ? JSON.stringify(json) : form });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.detail || `HTTP ${r.status}`); e.status = r.status; e.code = data.code; throw e; }
    return data;
  }

  // ---- rendering ---------------------------------------------------------------------------------------------
  const initials = (name) => (name || "").split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "•";
  const time = (iso) => { const d = iso ? new Date(iso) : new Date(); return d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }); };

  function header() {
    titleEl.textContent = (config && config.title) || t("title");
    avatarText.textContent = initials(agentName || titleEl.textContent);
    dot.classList.toggle("on", online);
    statusEl.textContent = agentName || (online ? t("online") : t("offline"));
  }

  function fileChip(f, incoming) {
    const chip = el("button", "file"); chip.type = "button"; chip.title = t("download");
    chip.append(icon(ICONS.file), el("span", null, f.filename));
    chip.addEventListener("click", async () => {
      const r = await fetch(`${base}/widget/${channel}/attachments/${f.id}`, { headers: { authorization: `Bearer ${store.token}` } });
      if (!r.ok) return;
      const url = URL.createObjectURL(await r.blob());
      const a = document.createElement("a"); a.href = url; a.download = f.filename; a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    });
    const wrap = el("div"); wrap.append(chip);
    if (/^image\/(png|jpeg|gif|webp)$/.test(f.content_type)) {
      // Rendering happens often: each picture is downloaded once per page, then its blob URL is reused.
      if (!previews.has(f.id)) previews.set(f.id, fetch(`${base}/widget/${channel}/attachments/${f.id}`,
        { headers: { authorization: `Bearer ${store.token}` } })
        .then((r) => (r.ok ? r.blob() : null)).then((b) => (b ? URL.createObjectURL(b) : null)).catch(() => null));
      previews.get(f.id).then((url) => { if (url) { const img = el("img", "preview"); img.alt = f.filename;
        img.src = url; wrap.prepend(img); } });
    }
    void incoming;
    return wrap;
  }

  function render() {
    list.replaceChildren();
    const all = [...messages.values()].sort((a, b) => a.id - b.id);
    const known = new Set(all.filter((m) => m.client_id).map((m) => m.client_id));
    let lastSender = null;
    for (const m of all) {
      const mine = m.direction === "in";
      const label = mine ? null : (m.sender === "agent" ? (m.name || t("agent")) : m.sender === "bot" ? t("bot") : (config && config.title) || t("agent"));
      if (!mine && label !== lastSender) list.append(el("div", "sender", label));
      lastSender = mine ? null : label;
      const bubble = el("div", `msg ${mine ? "in" : "out"}`);
      bubble.dataset.id = String(m.id);
      if (m.text) bubble.append(el("div", "text", m.text));
      for (const f of m.attachments || []) bubble.append(fileChip(f, mine));
      bubble.append(el("div", "meta", time(m.created_at)));
      list.append(bubble);
    }
    const last = all[all.length - 1];
    if (last && last.direction === "out" && (last.buttons || []).length) {
      const choices = el("div", "choices");
      for (const b of last.buttons) {
        const c = el("button", "choice", b.label); c.type = "button";
        c.addEventListener("click", () => queue({ text: b.label, button: b.id }));
        choices.append(c);
      }
      list.append(choices);
    }
    for (const p of [...store.outbox, ...uploads]) {
      if (known.has(p.client_id)) continue;
      const bubble = el("div", "msg in pending");
      bubble.append(el("div", "text", p.text || (p.file ? p.file.name : "")));
      bubble.append(el("div", "meta", t("sending")));
      list.append(bubble);
    }
    if (offlineSent) list.append(el("div", "notice", t("thanks", { email: offlineSent })));
    body.scrollTop = body.scrollHeight;
    unread();
  }

  function unread() {
    const outs = [...messages.values()].filter((m) => m.direction === "out");
    if (!panel.hidden && outs.length) {
      const top = Math.max(...outs.map((m) => m.id));
      const fresh = outs.filter((m) => m.id > store.seenId).map((m) => m.id);
      if (top > store.seenId) { store.seenId = top; persist(); }
      if (fresh.length && ready) send({ type: "seen", ids: fresh });
    }
    const count = outs.filter((m) => m.id > store.seenId).length;
    badge.hidden = count === 0; badge.textContent = count > 9 ? "9+" : String(count);
  }

  function showError(text) { errorEl.textContent = text || ""; errorEl.hidden = !text; }

  // ---- views: chat, pre-chat form, offline form --------------------------------------------------------------
  function field(name, type, labelText, value) {
    const label = el("label", null, labelText);
    const f = type === "textarea" ? el("textarea") : el("input");
    if (type !== "textarea") f.type = type;
    f.name = name; f.required = true; f.value = value || ""; label.append(f); return [label, f];
  }

  function showForm(kind) {
    formView.replaceChildren();
    const offline = kind === "offline";
    formView.append(el("h3", null, t(offline ? "offlineTitle" : "prechatTitle")), el("p", null, t(offline ? "offlineText" : "prechatText")));
    const names = offline ? ["name", "email", "message"] : missing;
    const inputs = {};
    for (const n of names) {
      if (offline && n === "name" && visitor && visitor.name) continue;
      const [label, f] = field(n, n === "email" ? "email" : n === "phone" ? "tel" : n === "message" ? "textarea" : "text",
        t(n), (visitor && visitor[n]) || "");
      inputs[n] = f; formView.append(label);
    }
    const err = el("div", "error"); err.hidden = true;
    const submit = el("button", "primary", t(offline ? "leave" : "start")); submit.type = "button";
    formView.append(err, submit);
    formView.addEventListener("input", () => { err.hidden = true; });
    submit.addEventListener("click", async () => {
      if (Object.values(inputs).some((f) => !f.value.trim() || !f.checkValidity())) { err.textContent = t("fill"); err.hidden = false; return; }
      submit.disabled = true;
      const v = Object.fromEntries(Object.entries(inputs).map(([k, f]) => [k, f.value.trim()]));
      try {
        if (offline) {
          await api("/offline", { method: "POST", json: { client_id: newId(), email: v.email, name: v.name || null, text: v.message } });
          offlineSent = v.email; visitor = { ...(visitor || {}), email: v.email };
          connect();
        } else {
          const r = await api("/visitor", { method: "PATCH", json: v });
          visitor = r.visitor; missing = r.missing;
        }
        view();
      } catch (e) { err.textContent = e.message; err.hidden = false; submit.disabled = false; }
    });
  }

  function view() {
    let form = null;
    if (missing.length) form = "prechat";
    // With a bot on the chat the visitor talks to it even when nobody is on duty (it hands off with a notice).
    else if (!online && config.offline_form && !config.bot && !messages.size && !offlineSent && !store.outbox.length) form = "offline";
    formView.hidden = !form; body.hidden = !!form; composer.hidden = !!form;
    if (form) showForm(form); else render();
    header();
  }

  // ---- proactive invitations: the first whose triggers hold is shown once per visit (browser session) ------
  const inviteEl = el("div", "invite"); inviteEl.hidden = true; inviteEl.setAttribute("role", "status");
  const inviteText = el("button", "invite-text"); inviteText.type = "button";
  const inviteClose = el("button", "invite-close"); inviteClose.type = "button"; inviteClose.append(icon(ICONS.close));
  inviteEl.append(inviteText, inviteClose);
  root.insertBefore(inviteEl, launcher);
  const INVITED = `${KEY}.invited`;
  let invitation = null;
  const glob = (p) => new RegExp(`^${p.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "i");
  const report = (inv, event) => api(`/invitations/${encodeURIComponent(inv.id)}/${event}`, { method: "POST" }).catch(() => {});
  function invite(returning) {
    let done = null; try { done = sessionStorage.getItem(INVITED); } catch { /* private mode */ }
    if (done || store.open || messages.size) return;
    const inv = (config.invitations || []).find((i) => (!i.url_pattern || glob(i.url_pattern).test(location.href))
      && (i.returning === null || i.returning === undefined || i.returning === returning));
    if (inv) setTimeout(() => showInvitation(inv), inv.after_seconds * 1000);
  }
  function showInvitation(inv) {
    if (!panel.hidden || invitation) return;
    invitation = inv;
    try { sessionStorage.setItem(INVITED, inv.id); } catch { /* private mode */ }
    inviteText.textContent = lang === "ru" ? inv.text_ru : inv.text_en;
    inviteClose.setAttribute("aria-label", t("dismiss"));
    inviteEl.hidden = false;
    report(inv, "shown");
  }
  inviteText.addEventListener("click", () => { inviteEl.hidden = true; report(invitation, "accepted"); setOpen(true); });
  inviteClose.addEventListener("click", () => { inviteEl.hidden = true; launcher.focus(); });

  function setOpen(open) {
    if (open) inviteEl.hidden = true;
    panel.hidden = !open; store.open = open; persist();
    root.classList.toggle("open", open); // on a phone the panel fills the screen: the launcher steps aside
    launcher.replaceChildren(icon(open ? ICONS.close : ICONS.chat), badge);
    launcher.setAttribute("aria-label", t(open ? "close" : "open"));
    if (open) { connect(); view(); if (!missing.length) input.focus(); }
    unread();
  }

  // ---- sending ---------------------------------------------------------------------------------------------
  function queue(item) {
    showError("");
    store.outbox.push({ client_id: newId(), text: item.text, button: item.button || null });
    persist(); render(); flush();
  }

  function flush() {
    if (!ready) return;
    for (const m of store.outbox) send({ type: "message", client_id: m.client_id, text: m.text,
      ...(m.button ? { button: m.button } : {}) });
    for (const u of uploads) if (!u.busy) upload(u);
  }

  async function upload(u) {
    u.busy = true;
    const form = new FormData(); form.append("client_id", u.client_id); form.append("file", u.file, u.file.name);
    try { await api("/files", { method: "POST", form }); uploads.splice(uploads.indexOf(u), 1); }
    catch (e) {
      if (e.status && e.status !== 429) { uploads.splice(uploads.indexOf(u), 1); showError(t("failed", { reason: e.message })); }
      else u.busy = false; // offline or too fast: tried again when the socket is back or the outbox flushes
    }
    render();
  }

  function pickFile(file) {
    if (!file) return;
    const max = config.max_file_bytes;
    if (file.size > max) { showError(t("tooLarge", { file: file.name, max: Math.floor(max / 1e6) })); return; }
    const type = (file.type || "application/octet-stream").toLowerCase();
    if (!config.file_types.some((ft) => ft === type || (ft.endsWith("/*") && type.startsWith(ft.slice(0, -1))))) { showError(t("badType")); return; }
    showError("");
    const u = { client_id: newId(), file, busy: false }; uploads.push(u); render(); if (ready) upload(u);
  }

  function typing() {
    if (!ready) return;
    const now = Date.now();
    if (now > typingUntil) { send({ type: "typing", typing: true }); typingUntil = now + 3000; }
    clearTimeout(typingOff);
    typingOff = setTimeout(() => { typingUntil = 0; if (ready) send({ type: "typing", typing: false }); }, 4000);
  }

  // ---- the socket ----------------------------------------------------------------------------------------------
  // A connection that dropped stays "ready" until its close event arrives; a frame sent meanwhile would only
  // raise an error in the page. Messages stay in the outbox until acknowledged and go out again on reconnect.
  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function connect() {
    if (socket || !store.token) return;
    clearTimeout(retryTimer);
    const ws = new WebSocket(`${wsBase}/widget/${channel}/socket`);
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: store.token, after_id: lastId }));
    ws.onmessage = (e) => {
      let f; try { f = JSON.parse(e.data); } catch { return; }
      if (f.type === "ready") { ready = true; retry = 1000; online = f.online; missing = f.missing || missing; connEl.hidden = true; flush(); header(); }
      else if (f.type === "messages") {
        for (const m of f.messages) { messages.set(m.id, m); if (m.client_id) removeSent(m.client_id); }
        lastId = Math.max(lastId, ...f.messages.map((m) => m.id));
        if (f.messages.some((m) => m.direction === "out")) typingEl.hidden = true;
        if (!formView.hidden && messages.size && !missing.length) view(); else render();
      } else if (f.type === "ack") removeSent(f.client_id);
      else if (f.type === "error" && f.client_id) {
        showError(t("failed", { reason: f.detail }));
        // Too fast: the message stays in the outbox and goes again later; any other refusal is final.
        if (f.code === "too_many_requests") { clearTimeout(retryTimer); retryTimer = setTimeout(flush, 15000); }
        else { removeSent(f.client_id); render(); }
      }
      else if (f.type === "agent") { agentName = f.name || ""; header(); }
      else if (f.type === "typing") {
        typingText.textContent = t("typing", { name: f.name || agentName || t("someone") });
        typingEl.hidden = !f.typing; clearTimeout(agentTypingTimer);
        if (f.typing) agentTypingTimer = setTimeout(() => { typingEl.hidden = true; }, 8000);
        body.scrollTop = body.scrollHeight;
      }
    };
    ws.onclose = (e) => {
      socket = null; ready = false;
      if (e.code === 4401) { store.token = null; persist(); start(); return; }
      if (e.code === 4403 || e.code === 4404) return; // this website may not use the chat: stay quiet
      connEl.textContent = t("reconnecting"); connEl.hidden = false;
      retryTimer = setTimeout(connect, retry); retry = Math.min(retry * 2, 15000);
    };
  }

  function removeSent(clientId) {
    const i = store.outbox.findIndex((m) => m.client_id === clientId);
    if (i >= 0) { store.outbox.splice(i, 1); persist(); render(); }
  }

  window.addEventListener("online", () => { if (!socket) { retry = 1000; connect(); } });

  // ---- start -----------------------------------------------------------------------------------------------
  async function start() {
    const pageLang = (document.documentElement.lang || navigator.language || "en").slice(0, 2).toLowerCase();
    let s;
    try { s = await api("/session", { method: "POST", json: { token: store.token, language: pageLang === "ru" ? "ru" : "en" } }); }
    catch { setTimeout(start, Math.min((retry *= 2), 30000)); return; }
    config = s.channel; visitor = s.visitor; missing = s.missing; online = config.online;
    if (s.renewed) { lastId = 0; store.seenId = 0; messages.clear(); }
    store.token = s.token; persist();
    lang = config.language !== "auto" ? config.language : (pageLang === "ru" ? "ru" : "en");
    root.style.setProperty("--brand", config.color);
    const rgb = parseInt(config.color.slice(1), 16), lum = 0.299 * (rgb >> 16) + 0.587 * ((rgb >> 8) & 255) + 0.114 * (rgb & 255);
    root.style.setProperty("--on-brand", lum > 170 ? "#111827" : "#ffffff");
    root.classList.toggle("left", config.position === "left");
    greetingEl.textContent = config.greeting || t("greeting");
    input.placeholder = t("placeholder"); sendBtn.setAttribute("aria-label", t("send")); attachBtn.title = t("attach");
    closeBtn.setAttribute("aria-label", t("close")); launcher.setAttribute("aria-label", t("open"));
    attachBtn.hidden = !config.file_types.length;
    header();
    if (saved.token || store.open || store.outbox.length) connect();
    setOpen(store.open);
    invite(!!saved.token && !s.renewed); // returning: this browser had a visitor token that still holds
  }

  launcher.addEventListener("click", () => setOpen(panel.hidden));
  closeBtn.addEventListener("click", () => setOpen(false));
  // Escape closes the chat from anywhere inside it and gives the focus back to the launcher (WAI-ARIA dialog).
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); setOpen(false); launcher.focus(); } });
  attachBtn.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => { pickFile(fileInput.files[0]); fileInput.value = ""; });
  const submitText = () => { const text = input.value.trim(); if (!text) return; input.value = ""; queue({ text }); };
  sendBtn.addEventListener("click", submitText);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submitText(); } else typing(); });

  async function styles() {
    const css = await fetch(`${base}/widget.css`, { credentials: "omit" }).then((r) => r.text());
    if ("adoptedStyleSheets" in shadow) { const sheet = new CSSStyleSheet(); sheet.replaceSync(css); shadow.adoptedStyleSheets = [sheet]; }
    else { const link = el("link"); link.rel = "stylesheet"; link.href = `${base}/widget.css`; shadow.prepend(link); }
    root.hidden = false;
  }

  const mount = () => { document.body.append(host); styles().catch(() => { root.hidden = false; }); start(); };
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
