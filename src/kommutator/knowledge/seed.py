"""Demo articles for a web shop, in Russian and English: delivery, returns, payment, order status, offices."""

from __future__ import annotations

from kommutator.auth.principal import Principal
from kommutator.db import Tx
from kommutator.knowledge.actions import do_create_article
from kommutator.knowledge.models import Article
from kommutator.knowledge.schemas import ArticleCreate, Language

# language, category, title, tags, body
ARTICLES: list[tuple[Language, str, str, list[str], str]] = [
    ("ru", "Доставка", "Сроки и стоимость доставки", ["доставка", "сроки", "курьер"], """\
Мы доставляем заказы по всей России, а также в Казахстан и Беларусь.

## Сроки
- Москва и Санкт-Петербург: на следующий день после оформления заказа.
- Крупные города России: 2–4 рабочих дня.
- Остальные населённые пункты: 4–10 рабочих дней.
- Казахстан и Беларусь: 7–14 рабочих дней.

## Стоимость
Доставка курьером стоит 299 ₽, в пункт выдачи — 149 ₽. Заказы от 3000 ₽ доставляем бесплатно.

Изменить адрес доставки можно, пока заказ не передан в службу доставки: напишите нам номер заказа и новый \
адрес."""),
    ("en", "Delivery", "Delivery times and costs", ["delivery", "shipping", "courier"], """\
We deliver across Russia and also ship to Kazakhstan and Belarus.

## Times
- Moscow and Saint Petersburg: the day after you place the order.
- Other large cities: 2-4 working days.
- Everywhere else: 4-10 working days.
- Kazakhstan and Belarus: 7-14 working days.

## Costs
Courier delivery costs 299 RUB, delivery to a pick-up point 149 RUB. Orders over 3000 RUB are delivered free.

You can change the delivery address until the order is handed to the carrier: send us the order number and \
the new address."""),
    ("ru", "Возврат и обмен", "Как вернуть или обменять товар", ["возврат", "обмен", "деньги"], """\
Товар надлежащего качества можно вернуть в течение 14 дней после получения, если сохранены товарный вид, \
упаковка и чек.

1. Напишите нам номер заказа и что хотите вернуть.
2. Мы пришлём код возврата и адрес ближайшего пункта приёма.
3. Отнесите товар в пункт приёма или любой наш офис.

Деньги вернём тем же способом, которым вы платили, в течение 10 дней после того, как товар придёт к нам. \
Бракованный товар заменим или вернём деньги в любой срок гарантии, доставку возврата оплачиваем мы."""),
    ("en", "Returns", "Returning or exchanging an item", ["returns", "exchange", "refund"], """\
You can return an item in its original condition within 14 days of receiving it, with its packaging and \
receipt.

1. Send us your order number and what you would like to return.
2. We send you a return code and the address of the nearest drop-off point.
3. Take the item to the drop-off point or to any of our offices.

We refund the money to the payment method you used within 10 days of the item reaching us. A faulty item is \
replaced or refunded at any time during its warranty, and we pay for its return shipping."""),
    ("ru", "Оплата", "Способы оплаты", ["оплата", "карта", "сбп"], """\
Оплатить заказ можно:
- банковской картой (Мир, Visa, Mastercard) на сайте;
- через СБП по QR-коду;
- наличными или картой курьеру при получении;
- по счёту для юридических лиц.

Если деньги списались дважды, не волнуйтесь: второе списание банк вернёт автоматически в течение 3 рабочих \
дней. Если этого не произошло, пришлите нам номер заказа и выписку из банка."""),
    ("en", "Payment", "Payment methods", ["payment", "card", "refund"], """\
You can pay for an order:
- by bank card (Mir, Visa, Mastercard) on the website;
- with the Faster Payments System (SBP) QR code;
- in cash or by card to the courier on delivery;
- by invoice, for companies.

If you were charged twice, the bank releases the second charge by itself within 3 working days. If it does \
not, send us the order number and your bank statement and we will refund it."""),
    ("ru", "Заказы", "Где мой заказ: статусы заказа", ["заказ", "статус", "трекинг"], """\
Статус заказа виден в личном кабинете и в письме, которое приходит после оформления.

- Оформлен: мы получили заказ и проверяем наличие.
- Собран: заказ упакован и ждёт передачи в доставку.
- Передан в доставку: в письме есть трек-номер для отслеживания.
- Доставлен: заказ можно забрать или он уже у вас.

Если срок доставки прошёл, а заказ всё ещё в пути, напишите нам номер заказа — мы свяжемся со службой \
доставки и ответим в течение рабочего дня."""),
    ("en", "Orders", "Where is my order: order statuses", ["order", "status", "tracking"], """\
You can see your order's status in your account and in the email we send when you place it.

- Placed: we have your order and are checking stock.
- Packed: the order is packed and waits for the carrier.
- Shipped: the email has a tracking number.
- Delivered: the order is ready to collect or already with you.

If the delivery date has passed and the order is still on its way, send us the order number: we contact the \
carrier and answer within one working day."""),
    ("ru", "Офисы", "Адреса и часы работы офисов", ["офис", "адрес", "самовывоз"], """\
В офисах можно забрать заказ, вернуть товар и получить консультацию.

- Москва, Ленинградский проспект, 80 (метро Сокол): ежедневно 10:00–21:00.
- Москва, ул. Покровка, 17 (метро Китай-город): ежедневно 10:00–21:00.
- Санкт-Петербург, Невский проспект, 88 (метро Маяковская): пн–сб 10:00–20:00.

Заказ хранится в офисе 7 дней. Возьмите с собой паспорт или код получения из письма."""),
    ("en", "Offices", "Office addresses and opening hours", ["office", "address", "pick-up"], """\
At our offices you can collect an order, return an item and get advice.

- Moscow, 80 Leningradsky Prospekt (Sokol metro): daily 10:00-21:00.
- Moscow, 17 Pokrovka Street (Kitay-Gorod metro): daily 10:00-21:00.
- Saint Petersburg, 88 Nevsky Prospekt (Mayakovskaya metro): Mon-Sat 10:00-20:00.

An order is kept at the office for 7 days. Bring your passport or the pick-up code from the email."""),
]


async def seed_articles(tx: Tx, author_id: int) -> list[Article]:
    """Create the demo articles, published, written by user ``author_id``."""
    author = Principal(user_id=author_id, name="demo seed", role="admin", team_ids=frozenset())
    return [await do_create_article(tx, author, ArticleCreate(title=title, body=body, tags=tags, language=language,
                                                              category=category, status="published"))
            for language, category, title, tags, body in ARTICLES]
