// Texts of the CRM section, consent withdrawal and the data export on the customer card (contact.js).
import { addTexts } from "../i18n.js";

addTexts({
  en: {
    "contact.crm": "CRM",
    "contact.crm.not_found": "The CRM does not know this customer.",
    "contact.crm.error": "The CRM could not be asked: {error}",
    "contact.crm.timeout": "The CRM did not answer in time ({error}).",
    "contact.crm.asked": "asked",
    "contact.crm.refresh": "Ask again",
    "contact.crm.orders": "Orders",
    "contact.consent.withdraw": "Withdraw",
    "contact.export": "Export data",
    "contact.consent.withdrawnBy": "withdrawn at the customer's request by {name} in the workspace",
  },
  ru: {
    "contact.crm": "CRM",
    "contact.crm.not_found": "В CRM нет этого клиента.",
    "contact.crm.error": "Не удалось обратиться к CRM: {error}",
    "contact.crm.timeout": "CRM не ответила вовремя ({error}).",
    "contact.crm.asked": "запрошено",
    "contact.crm.refresh": "Запросить снова",
    "contact.crm.orders": "Заказы",
    "contact.consent.withdraw": "Отозвать",
    "contact.export": "Выгрузить данные",
    "contact.consent.withdrawnBy": "отозвано по просьбе клиента, {name}, в рабочем месте",
  },
});
