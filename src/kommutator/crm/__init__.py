"""The CRM card: when a conversation starts, the company's CRM is asked about the customer, and what it answers
(name, tier, recent orders, personal manager) is shown on the customer card and is there for routing and the
bot. Asked in the background with a time limit and cached: a slow or failing CRM never delays intake or the bot.
"""
