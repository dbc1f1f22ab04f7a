// UI texts in English and Russian. Static markup names its text with data-i18n (textContent),
// data-i18n-placeholder, data-i18n-title and data-i18n-aria-label; scripts call t(key, params).
// Translations only ever go through textContent or attributes, never through innerHTML.

const DICTIONARIES = {
  en: {
    "app.loading": "Loading…",
    "app.workspace": "Agent workspace",
    "login.email": "Email",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.busy": "Logging in…",
    "login.missing": "Enter your email and password.",
    "lang.label": "Language",
    "logout": "Log out",
    "banner.dismiss": "Dismiss",
    "views.label": "Conversation views",
    "view.mine": "Mine",
    "view.unassigned": "Unassigned",
    "view.all": "All",
    "filter.status": "Status",
    "filter.open": "Open",
    "filter.resolved": "Resolved",
    "list.label": "Conversations",
    "list.empty": "No conversations here.",
    "list.lastActivity": "Last activity {time}",
    "conv.pick": "Pick a conversation on the left.",
    "conv.gone": "This conversation is no longer available to you.",
    "conv.loading": "Loading the conversation…",
    "conv.assignee": "Assigned to {name}",
    "conv.unassigned": "Not assigned",
    "conv.priority": "Priority: {priority}",
    "conv.labels": "Labels: {labels}",
    "conv.timeline": "Messages",
    "conv.noMessages": "No messages yet.",
    "conv.olderHidden": "Older messages are not shown.",
    "action.resolve": "Resolve",
    "action.reopen": "Reopen",
    "action.assignMe": "Assign to me",
    "action.done.resolved": "Conversation resolved.",
    "action.done.reopened": "Conversation reopened.",
    "action.done.assigned": "Conversation assigned to you.",
    "composer.label": "Reply",
    "composer.placeholder": "Write a reply to the customer…",
    "composer.notePlaceholder": "Write a private note for your colleagues (the customer does not see it)…",
    "composer.note": "Private note",
    "composer.send": "Send",
    "composer.addNote": "Add note",
    "composer.hint": "Ctrl+Enter sends",
    "composer.empty": "Write something first.",
    "msg.customer": "Customer",
    "msg.agent": "Agent",
    "msg.you": "You",
    "msg.bot": "Bot",
    "msg.system": "System",
    "msg.note": "Private note",
    "msg.channel": "channel #{id}",
    "msg.channelNamed": "channel #{id} · {name}",
    "msg.noChannel": "internal",
    "msg.status.queued": "sending…",
    "msg.status.sent": "sent",
    "msg.status.delivered": "delivered",
    "msg.status.read": "read",
    "msg.status.failed": "not delivered",
    "msg.attachments": "Attachments",
    "contact.title": "Contact",
    "contact.name": "Name",
    "contact.email": "Email",
    "contact.phone": "Phone",
    "contact.language": "Language",
    "contact.identities": "Identities",
    "contact.attributes": "Attributes",
    "contact.none": "—",
    "contact.unnamed": "(no name)",
    "status.bot": "with bot",
    "status.queued": "queued",
    "status.assigned": "assigned",
    "status.waiting": "waiting",
    "status.snoozed": "snoozed",
    "status.resolved": "resolved",
    "status.open": "open",
    "priority.low": "low",
    "priority.normal": "normal",
    "priority.high": "high",
    "priority.urgent": "urgent",
    "error.network": "The server cannot be reached; check your connection.",
    "error.sessionExpired": "Your session has ended; log in again.",
    "error.generic": "Something went wrong (HTTP {status}).",
  },
  ru: {
    "app.loading": "Загрузка…",
    "app.workspace": "Рабочее место оператора",
    "login.email": "Эл. почта",
    "login.password": "Пароль",
    "login.submit": "Войти",
    "login.busy": "Входим…",
    "login.missing": "Введите эл. почту и пароль.",
    "lang.label": "Язык",
    "logout": "Выйти",
    "banner.dismiss": "Закрыть",
    "views.label": "Представления",
    "view.mine": "Мои",
    "view.unassigned": "Без исполнителя",
    "view.all": "Все",
    "filter.status": "Статус",
    "filter.open": "Открытые",
    "filter.resolved": "Решённые",
    "list.label": "Обращения",
    "list.empty": "Здесь нет обращений.",
    "list.lastActivity": "Последняя активность {time}",
    "conv.pick": "Выберите обращение слева.",
    "conv.gone": "Это обращение вам больше недоступно.",
    "conv.loading": "Загружаем обращение…",
    "conv.assignee": "Исполнитель: {name}",
    "conv.unassigned": "Без исполнителя",
    "conv.priority": "Приоритет: {priority}",
    "conv.labels": "Метки: {labels}",
    "conv.timeline": "Сообщения",
    "conv.noMessages": "Сообщений пока нет.",
    "conv.olderHidden": "Более ранние сообщения не показаны.",
    "action.resolve": "Решить",
    "action.reopen": "Открыть снова",
    "action.assignMe": "Взять себе",
    "action.done.resolved": "Обращение решено.",
    "action.done.reopened": "Обращение открыто снова.",
    "action.done.assigned": "Обращение назначено на вас.",
    "composer.label": "Ответ",
    "composer.placeholder": "Напишите ответ клиенту…",
    "composer.notePlaceholder": "Напишите заметку для коллег (клиент её не увидит)…",
    "composer.note": "Внутренняя заметка",
    "composer.send": "Отправить",
    "composer.addNote": "Добавить заметку",
    "composer.hint": "Ctrl+Enter — отправить",
    "composer.empty": "Сначала напишите текст.",
    "msg.customer": "Клиент",
    "msg.agent": "Оператор",
    "msg.you": "Вы",
    "msg.bot": "Бот",
    "msg.system": "Система",
    "msg.note": "Внутренняя заметка",
    "msg.channel": "канал #{id}",
    "msg.channelNamed": "канал #{id} · {name}",
    "msg.noChannel": "внутреннее",
    "msg.status.queued": "отправляется…",
    "msg.status.sent": "отправлено",
    "msg.status.delivered": "доставлено",
    "msg.status.read": "прочитано",
    "msg.status.failed": "не доставлено",
    "msg.attachments": "Вложения",
    "contact.title": "Клиент",
    "contact.name": "Имя",
    "contact.email": "Эл. почта",
    "contact.phone": "Телефон",
    "contact.language": "Язык",
    "contact.identities": "Идентификаторы",
    "contact.attributes": "Атрибуты",
    "contact.none": "—",
    "contact.unnamed": "(без имени)",
    "status.bot": "у бота",
    "status.queued": "в очереди",
    "status.assigned": "назначено",
    "status.waiting": "ждём клиента",
    "status.snoozed": "отложено",
    "status.resolved": "решено",
    "status.open": "открыто",
    "priority.low": "низкий",
    "priority.normal": "обычный",
    "priority.high": "высокий",
    "priority.urgent": "срочный",
    "error.network": "Сервер недоступен; проверьте подключение.",
    "error.sessionExpired": "Сеанс завершён; войдите снова.",
    "error.generic": "Что-то пошло не так (HTTP {status}).",
  },
};

export const LANGUAGES = Object.freeze(["en", "ru"]);
const STORAGE_KEY = "kommutator.lang";
let current = "en";

/** The language before anyone logs in: the last one chosen here, else the browser's. */
export function initialLang() {
  let saved = null;
  try {
    saved = window.localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  if (saved && LANGUAGES.includes(saved)) return saved;
  const browser = (navigator.language || "en").slice(0, 2).toLowerCase();
  return LANGUAGES.includes(browser) ? browser : "en";
}

export function lang() {
  return current;
}

/** Translate a key; {name} placeholders are filled from params. Unknown keys fall back to English. */
export function t(key, params = {}) {
  const text = DICTIONARIES[current][key] ?? DICTIONARIES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Switch the language and re-translate the static markup under root. */
export function setLang(next, root = document) {
  current = LANGUAGES.includes(next) ? next : "en";
  document.documentElement.lang = current;
  try {
    window.localStorage.setItem(STORAGE_KEY, current);
  } catch {
    // storage may be disabled; the choice then lasts for this page only
  }
  translate(root);
  return current;
}

export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** A short time for lists and the timeline: the time of day today, else the date and time. */
export function shortTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const options = sameDay(when, new Date())
    ? { hour: "2-digit", minute: "2-digit" }
    : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(current, options).format(when);
}

export function fullTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return new Intl.DateTimeFormat(current, { dateStyle: "full", timeStyle: "medium" }).format(when);
}

/** The key exists in the dictionaries (used for values coming from the server, such as statuses). */
export function has(key) {
  return key in DICTIONARIES.en;
}
