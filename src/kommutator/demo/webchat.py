"""The demo shop's website chat: a web chat channel, and the shop page that embeds it (kommutator demo)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import HTMLResponse

from kommutator.auth.principal import Principal
from kommutator.channels.actions import do_create_channel
from kommutator.channels.models import Channel
from kommutator.channels.schemas import ChannelCreate
from kommutator.common.routes import SafeRoute
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.runtime import Runtime, get_runtime

SHOP_PATH = "/demo/shop"
router = APIRouter(include_in_schema=False, route_class=SafeRoute)


async def seed_webchat(rt: Runtime, admin: Principal, *, team_id: int, queue_id: int | None) -> int:
    """Connect the demo shop's chat to the support team; its id."""
    async def job(tx: Tx) -> int:
        channel, _ = await do_create_channel(tx, admin, ChannelCreate(
            type="webchat", name="Shop website chat", team_id=team_id, queue_id=queue_id,
            settings={"title": "Cosmo Shop", "color": "#4f46e5", "language": "auto",
                      "greeting": "", "prechat_fields": [], "offline_form": True}), rt.box)
        return channel.id

    return await rt.db.write(job)


_PRODUCTS = [("Aurora headphones", "Наушники Aurora", "89", "p1"), ("Nimbus backpack", "Рюкзак Nimbus", "59", "p2"),
             ("Comet smartwatch", "Часы Comet", "149", "p3"), ("Orbit speaker", "Колонка Orbit", "45", "p4")]


def shop_page(base: str, channel_id: int, lang: str) -> str:
    """The demo shop: an ordinary page of someone's website, embedding the chat with one script tag."""
    ru = lang == "ru"
    cards = "".join(
        f'<article class="card"><div class="pic {cls}"></div><h3>{escape(ru_name if ru else name)}</h3>'
        f'<p class="price">${price}</p><button type="button">{"В корзину" if ru else "Add to cart"}</button></article>'
        for name, ru_name, price, cls in _PRODUCTS)
    other = "en" if ru else "ru"
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cosmo Shop</title>
<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/demo/shop.css">
</head>
<body>
<header class="top"><strong class="logo">Cosmo<span>Shop</span></strong>
<nav><a href="{SHOP_PATH}?lang={lang}">{"Каталог" if ru else "Catalogue"}</a>
<a href="{SHOP_PATH}?lang={other}">{other.upper()}</a></nav></header>
<main>
<section class="hero"><h1>{"Гаджеты для путешествий" if ru else "Gadgets for every journey"}</h1>
<p>{"Бесплатная доставка от $50. Вопросы? Напишите нам в чат внизу справа." if ru else
    "Free delivery over $50. Questions? Ask us in the chat at the bottom right."}</p></section>
<section class="grid">{cards}</section>
</main>
<footer>© 2026 Cosmo Shop · {"демо-магазин Kommutator" if ru else "a Kommutator demo shop"}</footer>
<script src="{escape(base)}/widget.js" data-channel="{channel_id}" async></script>
</body>
</html>
"""


@router.get(SHOP_PATH)
async def shop(request: Request, lang: str = "en") -> HTMLResponse:
    """The demo shop page with the first web chat channel's widget."""
    rt = await get_runtime(request)
    async with rt.db.read() as s:
        channel_id = await s.scalar(select(Channel.id).where(Channel.type == "webchat", Channel.enabled.is_(True))
                                    .order_by(Channel.id).limit(1))
    if channel_id is None:
        raise ProblemError(404, "chat_not_found", "There is no website chat channel; run 'kommutator demo' once.")
    base = str(request.base_url).rstrip("/")  # the address the visitor used (kommutator demo may move ports)
    ws = base.replace("http", "ws", 1)
    # The shop's own policy, as a real website would set it: the chat's server is allowed for the script and
    # its connections, nothing inline.
    csp = (f"default-src 'self'; script-src 'self' {base}; style-src 'self'; img-src 'self' data: blob:; "
           f"connect-src 'self' {base} {ws}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(shop_page(base, channel_id, "ru" if lang == "ru" else "en"),
                        headers={"content-security-policy": csp})
