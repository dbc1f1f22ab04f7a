"""The intent models the bot uses, and the background trainer that makes them.

``IntentRegistry`` (one per runtime, ``intents_of(rt)``) holds the newest trained model per language; the bot's
steps read it and never train. ``IntentTrainer`` (a server service) loads the newest saved models when the
server starts (a fresh installation's first version, the shipped intents, is trained then, in the background),
and trains each version the intent API asks for in a worker process (a thread in tests), outside any
transaction, then saves it
with its cross-validation report. A step that runs while a model is still loading simply goes without intents
(menus still understand numbers, labels and synonyms).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import multiprocessing
import os
import threading
import time
from typing import Any

from sqlalchemy import select

from kommutator.bot.intent_actions import do_request_training, do_store_model
from kommutator.bot.intent_queries import pending_version, ready_models, training_sets
from kommutator.bot.models import BotIntentModel
from kommutator.bot.nlu import IntentModel, Language
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker

log = logging.getLogger(__name__)


class IntentRegistry:
    """The newest trained intent model per language, swapped whole when a new version is ready."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[int, IntentModel]] = {}
        self._lock = threading.Lock()
        self.loaded = asyncio.Event()

    def get(self, language: str) -> IntentModel | None:
        found = self._models.get(language)
        return found[1] if found else None

    def version(self, language: str) -> int | None:
        found = self._models.get(language)
        return found[0] if found else None

    def put(self, language: str, version: int, model: IntentModel) -> None:
        with self._lock:
            current = self._models.get(language)
            if current is None or current[0] <= version:
                self._models[language] = (version, model)


def intents_of(rt: Runtime) -> IntentRegistry:
    if rt.intent_models is None:
        rt.intent_models = IntentRegistry()
    return rt.intent_models


def report_of(model: IntentModel, examples: dict[str, list[str]], seconds: float) -> dict[str, Any]:
    cal = model.calibration
    out: dict[str, Any] = {"intents": len(examples), "examples": sum(map(len, examples.values())),
                           "threshold": model.threshold, "train_seconds": round(seconds, 3)}
    if cal is not None:
        out.update(in_scope_accuracy=cal.in_scope_accuracy, withheld_rejection=cal.withheld_rejection,
                   per_intent=[{"intent": k, "precision": p, "recall": r} for k, (p, r) in cal.per_intent.items()],
                   confused=[{"expected": a, "predicted": b, "count": n} for a, b, n in cal.confused])
    return out


def train_one(examples: dict[str, list[str]], language: str) -> tuple[bytes, dict[str, Any], IntentModel]:
    started = time.process_time()
    model = IntentModel.train(examples, language)  # type: ignore[arg-type]
    return model.to_bytes(), report_of(model, examples, time.process_time() - started), model


def train_saved(examples: dict[str, list[str]], language: str) -> tuple[bytes, dict[str, Any]]:
    """``train_one`` for a worker process: the model travels back as its saved bytes."""
    blob, report, _ = train_one(examples, language)
    return blob, report


PARENT_POLL = 0.5  # seconds between a training process's looks at its parent


def _exit_with_parent(parent: int) -> None:
    """In a training process: exit as soon as the server that started it is gone (killed, crashed), instead of
    living on as an orphan, blocked on its task queue or finishing a training nobody will store."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def training_pool() -> concurrent.futures.ProcessPoolExecutor:
    """One fresh (spawned) process for training, which exits when its parent dies."""
    return concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_exit_with_parent, initargs=(os.getpid(),))


class IntentTrainer(PollingWorker):
    """Loads saved intent models at start and trains requested versions in the background."""

    name_in_logs = "intent-trainer"
    interval = 1.0

    def __init__(self, rt: Runtime, *, processes: bool = True) -> None:
        super().__init__()
        self.rt = rt
        self.registry = intents_of(rt)
        # Training is CPU-bound Python: in a thread it would hold the GIL against the server's event loop, so
        # the server trains in a separate process (one, started on first need); tests may train in a thread.
        self.processes = processes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    async def stop(self) -> None:
        await super().stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _train(self, examples: dict[str, list[str]], language: str) -> tuple[bytes, dict[str, Any], IntentModel]:
        if not self.processes:
            return await asyncio.to_thread(train_one, examples, language)
        if self._pool is None:
            self._pool = training_pool()
        loop = asyncio.get_running_loop()
        blob, report = await loop.run_in_executor(self._pool, train_saved, examples, language)
        return blob, report, await asyncio.to_thread(IntentModel.from_bytes, blob)

    async def load(self) -> int:
        """Load the newest ready model per language; ask for a first version when there is none at all."""
        async with self.rt.db.read() as s:
            rows = await ready_models(s)
            anything = await s.scalar(select(BotIntentModel.id).limit(1))
        for language, row in rows.items():
            if row.model is None:
                continue
            try:
                model = await asyncio.to_thread(IntentModel.from_bytes, row.model)
            except ValueError:  # saved by another engine format: train the same intents again
                log.warning("intent model v%s (%s) is of an older format; retraining", row.version, language)
                anything = None
                continue
            self.registry.put(language, row.version, model)
        if anything is None:
            await self.rt.db.write(lambda tx: do_request_training(tx, None))
        self.registry.loaded.set()
        return len(rows)

    async def run_due(self) -> int:
        """Train the newest pending version, if any; returns how many language models were stored."""
        if not self.registry.loaded.is_set():
            await self.load()
        async with self.rt.db.read() as s:
            version = await pending_version(s)
            if version is None:
                return 0
            sets = await training_sets(s, shipped=self.rt.settings.bot_shipped_intents)
        stored = 0
        for language, examples in sets.items():
            if len(examples) < 2:  # e.g. the shipped intents turned off and fewer than two of the business's
                await self.rt.db.write(functools.partial(
                    do_store_model, version=version, language=language, blob=None, report={},
                    error="an intent model needs at least two intents with phrases in this language"))
                continue
            try:
                blob, report, model = await self._train(examples, language)
            except Exception as e:  # bad data must not stop the trainer; the failure is shown in the API
                log.exception("training intent model v%s (%s) failed", version, language)
                await self.rt.db.write(functools.partial(do_store_model, version=version, language=language,
                                                         blob=None, report={}, error=f"{type(e).__name__}: {e}"))
                continue
            saved = await self.rt.db.write(functools.partial(do_store_model, version=version, language=language,
                                                             blob=blob, report=report))
            if saved:
                self.registry.put(language, version, model)
                stored += 1
        return stored


def model_for(rt: Runtime, language: Language) -> IntentModel | None:
    return intents_of(rt).get(language)
