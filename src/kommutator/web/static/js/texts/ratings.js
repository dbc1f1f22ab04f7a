// Texts of the past ratings on the customer card (contact.js).
import { addTexts } from "../i18n.js";

addTexts({
  en: {
    "contact.ratings": "Ratings",
    "contact.rating.csat": "{score} of 5",
    "contact.rating.nps": "NPS {score} of 10",
    "contact.rating.conversation": "conversation #{id}",
  },
  ru: {
    "contact.ratings": "Оценки",
    "contact.rating.csat": "{score} из 5",
    "contact.rating.nps": "NPS {score} из 10",
    "contact.rating.conversation": "обращение №{id}",
  },
});
