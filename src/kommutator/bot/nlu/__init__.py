"""Natural-language understanding for the ICR bot: menu answers, requests for a human, intents.

Three independent, synchronous, thread-safe calls; nothing is downloaded, everything ships in the package:

* ``match_option(text, options, language)`` → ``Match | None``: which offered option a free-text answer picks;
* ``wants_human(text, language)`` → ``bool``: whether the customer asks for a person;
* ``default_model(language).predict(text)`` → ``Prediction(intent | None, confidence)``: what the message is
  about, None when out of scope; ``IntentModel.train(examples, language)`` fits one on other examples.

See docs/bot-nlu.md.
"""

from kommutator.bot.nlu.human import declines_human, wants_human
from kommutator.bot.nlu.intents import DEFAULT_INTENTS, Examples, IntentModel, Prediction, default_model, load_examples
from kommutator.bot.nlu.menu import Match, MenuOption, match_option
from kommutator.common.text import LANGUAGES, Language, normalize, swap_layout

__all__ = [
    "DEFAULT_INTENTS",
    "LANGUAGES",
    "Examples",
    "IntentModel",
    "Language",
    "Match",
    "MenuOption",
    "Prediction",
    "declines_human",
    "default_model",
    "load_examples",
    "match_option",
    "normalize",
    "swap_layout",
    "wants_human",
]
