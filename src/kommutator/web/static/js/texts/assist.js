// Texts of the reply suggestions above the composer (workspace/suggestions.js).
import { addTexts } from "../i18n.js";

addTexts({
  en: {
    "assist.label": "Suggested replies",
    "assist.hint": "Click or Alt+1…3 puts one into the reply box",
    "assist.source.canned": "Canned response",
    "assist.source.article": "Knowledge base",
    "assist.source.reply": "Sent before",
    "assist.matched": "Matched: {words}",
    "assist.timesSent": "sent in similar cases: {n}",
    "assist.similar": "Similar question",
    "assist.insert": "Insert suggestion {n}: {text}",
  },
  ru: {
    "assist.label": "Подсказки ответа",
    "assist.hint": "Щелчок или Alt+1…3 вставляет подсказку в поле ответа",
    "assist.source.canned": "Шаблон",
    "assist.source.article": "База знаний",
    "assist.source.reply": "Отвечали раньше",
    "assist.matched": "Совпало: {words}",
    "assist.timesSent": "отправляли в похожих случаях: {n}",
    "assist.similar": "Похожий вопрос",
    "assist.insert": "Вставить подсказку {n}: {text}",
  },
});
