// Durations as people write them: "5 min", "1 h 30 min", "45 s", "2 d" (Russian: "5 мин", "1 ч 30 мин"). One
// formatter and one parser for every screen that edits a time limit (SLA policies, standards), so a value is
// never typed or shown in raw seconds.

import { addTexts, t } from "./i18n.js";

addTexts({
  en: { "dur.d": "d", "dur.h": "h", "dur.min": "min", "dur.s": "s", "dur.none": "—",
    "dur.hint": "e.g. 5 min, 1 h 30 min, 45 s", "dur.invalid": "Write a duration such as 5 min or 1 h 30 min." },
  ru: { "dur.d": "д", "dur.h": "ч", "dur.min": "мин", "dur.s": "с", "dur.none": "—",
    "dur.hint": "например: 5 мин, 1 ч 30 мин, 45 с", "dur.invalid": "Укажите длительность, например 5 мин или 1 ч 30 мин." },
});

const UNITS = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
// Every spelling either language uses for a unit, longest first so "min" is not read as "m" + "in".
const WORDS = [
  [86400, ["days", "day", "d", "дней", "дня", "день", "дн", "д"]],
  [3600, ["hours", "hour", "hrs", "hr", "h", "часов", "часа", "час", "ч"]],
  [60, ["minutes", "minute", "mins", "min", "m", "минут", "минуты", "минута", "мин", "м"]],
  [1, ["seconds", "second", "secs", "sec", "s", "секунд", "секунды", "секунда", "сек", "с"]],
];
const FACTOR = new Map(WORDS.flatMap(([f, words]) => words.map((w) => [w, f])));
const PART = /(\d+(?:[.,]\d+)?)\s*([a-zа-яё]+)?/gy;

/** 5400 → "1 h 30 min" (in the reader's language); null/undefined/0 → "—". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds === "" || Number(seconds) <= 0) return t("dur.none");
  let left = Math.round(Number(seconds));
  const parts = [];
  for (const [unit, size] of UNITS) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)} ${t(`dur.${unit}`)}`);
      left %= size;
    }
  }
  return parts.join(" ");
}

/** The text of an input for a duration: "" for none, else the formatted value. */
export function durationValue(seconds) {
  return seconds ? formatDuration(seconds) : "";
}

/** "1 h 30 min", "1ч30м", "90 s", "1:30" (h:mm), "15" (minutes) → seconds; "" → null; anything else → NaN. */
export function parseDuration(text) {
  const s = String(text || "").trim().toLowerCase();
  if (!s) return null;
  const clock = /^(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$/.exec(s);
  if (clock) return Number(clock[1]) * 3600 + Number(clock[2]) * 60 + Number(clock[3] || 0);
  if (/^\d+$/.test(s)) return Number(s) * 60; // a bare number is minutes, as limits are usually set
  let total = 0;
  let pos = 0;
  // "1 h, 30 min" and "1 h and 30 min" ("1 ч и 30 мин") read as "1 h 30 min"; "1,5 h" keeps its decimal comma.
  const rest = s.replace(/,\s+/g, " ").replace(/(^|\s)(and|и)(?=\s)/g, " ");
  while (pos < rest.length) {
    while (rest[pos] === " ") pos += 1;
    if (pos >= rest.length) break;
    PART.lastIndex = pos;
    const m = PART.exec(rest);
    if (!m || !m[2] || !FACTOR.has(m[2].replace(/\.$/, ""))) return NaN;
    total += Number(m[1].replace(",", ".")) * FACTOR.get(m[2]);
    pos = PART.lastIndex;
    if (rest[pos] === ".") pos += 1; // "мин."
  }
  return Math.round(total);
}
