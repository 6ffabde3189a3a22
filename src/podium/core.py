"""The Core: every long-lived object of a Podium server, created once at start-up.

The web app keeps one on `app.state.core`; the CLI builds one to call services directly.
Nothing here runs at import time.
"""

from __future__ import annotations

import time

from podium.bus import EventBus, make_bus
from podium.runtime.agent import ModelConfig
from podium.runtime.embeddings.base import build_embedder
from podium.runtime.loop import AgentLoop
from podium.runtime.providers.pool import ProviderPool
from podium.runtime.response_cache import ResponseCache
from podium.runtime.routing import ModelRouter
from podium.runtime.tools.base import ToolContext, ToolRegistry
from podium.runtime.tools import knowledge as knowledge_tools
from podium.runtime.tools.builtin import register_builtins
from podium.runtime.tracing import Tracing
from podium.services.access import AccessService, RateLimiter
from podium.services.agents import AgentService
from podium.services.approvals import ApprovalService
from podium.services.budgets import BudgetService
from podium.services.provider_keys import ProviderKeyService
from podium.services.triggers import TriggerService
from podium.services.config import ConfigService
from podium.services.conversations import ConversationService
from podium.services.feedback import FeedbackService
from podium.services.knowledge import KnowledgeService
from podium.services.vectors import MatrixCache
from podium.services.memory import MemoryService
from podium.services.logs import LogService
from podium.services.metrics import Metrics
from podium.services.observatory import Observatory
from podium.services.stats import StatsService
from podium.services.system import SystemService
from podium.services.tools import ToolService
from podium.services.work import WorkService
from podium.services.work_agents import SessionWorker
from podium.settings import Settings
from podium.store.agents import AgentStore
from podium.store.approvals import ApprovalStore
from podium.store.budgets import BudgetStore
from podium.store.provider_keys import ProviderKeyStore
from podium.store.triggers import TriggerStore
from podium.store.conversations import ConversationStore
from podium.store.db import Database
from podium.store.feedback import FeedbackStore
from podium.store.knowledge import KnowledgeStore
from podium.store.memory import MemoryStore
from podium.store.traces import TraceStore
from podium.store.turn_writer import TurnWriter
from podium.store.turn_queries import TurnQueries
from podium.store.work import WorkStore


class Core:
    """Builds, starts and stops the services; dialects and the CLI reach them from here."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.db = Database(settings.db_url)
        self.bus: EventBus = make_bus(settings.events.bus_url)
        self.tools = ToolRegistry()
        register_builtins(self.tools)
        self.providers = ProviderPool(settings)
        self.agents = AgentService(AgentStore(self.db), self.tools)
        conversations, traces = ConversationStore(self.db), TraceStore(self.db)
        self.writer = TurnWriter(self.db, conversations, traces)
        self.tracing = Tracing(traces, self.writer, settings.otlp_endpoint, settings.trace_sample_ratio)
        self.response_cache = ResponseCache()
        self.loop = AgentLoop(self.providers, self.tools, self.agents,
                              default_model=ModelConfig.model_validate(settings.default_model),
                              router=ModelRouter.from_settings(settings),
                              tracer=self.tracing.tracer, cache=self.response_cache)
        self.conversations = ConversationService(settings, self.agents, self.loop, conversations, self.writer,
                                                 services=self, tracing=self.tracing)
        self.tool_service = ToolService(self.tools, self.agents, ToolContext(settings, services=self))
        self._build_resilience(settings)
        self._build_observability(settings)
        self._build_work(settings)
        self._build_memory(settings)

    def _build_resilience(self, settings: Settings) -> None:
        """Access, rate limits and budgets (issue 5); access and budgets run before every run."""
        self.access = AccessService(settings)
        self.rate_limiter = RateLimiter(settings.rate_limit.per_ip_per_minute, settings.rate_limit.storage_uri)
        self.budgets = BudgetService(BudgetStore(self.db), self.loop.router)
        self.conversations.hooks.before[:0] = [self.access.before_run, self.budgets.before_run]
        self.provider_keys = ProviderKeyService(settings, ProviderKeyStore(self.db), self.providers)
        self.approvals = ApprovalService(ApprovalStore(self.db), self.bus,
                                         timeout=settings.resilience.approval_timeout)
        self.loop.tool_gate = self.approvals.gate
        self.triggers = TriggerService(TriggerStore(self.db), self.conversations, self.agents, self.access,
                                       workers=settings.resilience.trigger_workers,
                                       lease=settings.resilience.trigger_lease)

    def _build_observability(self, settings: Settings) -> None:
        """Metrics, logs, stats, the context observatory, feedback, system and config (issue 6)."""
        self.metrics = Metrics()
        self.logs = LogService(settings.data_dir, settings.log_level, settings.log_ring_size)
        self.conversations.hooks.after += [self.metrics.after_run, self.logs.after_run]
        turns = TurnQueries(self.db)
        self.feedback = FeedbackService(FeedbackStore(self.db), turns, self.bus)
        self.stats = StatsService(turns, self)
        self.observatory = Observatory(self)
        self.system = SystemService(self)
        self.config_service = ConfigService(self)

    def _build_work(self, settings: Settings) -> None:
        """Work tracking and the agents that work sessions' tasks (issue 3)."""
        self.work = WorkService(WorkStore(self.db, settings.base_url + "/api"), self.bus,
                                self.conversations.store)
        self.session_worker = SessionWorker(settings, self.work, self.conversations, self.agents, self.loop)

    def _build_memory(self, settings: Settings) -> None:
        """Embeddings, RAG collections, semantic memory, notes and history strategies (issue 4)."""
        self.embedder = build_embedder(settings)
        cache = MatrixCache(settings.rag_cache_mb * 1024 * 1024)
        self.knowledge = KnowledgeService(KnowledgeStore(self.db), self.embedder, cache, self.bus)
        self.memory = MemoryService(settings, MemoryStore(self.db), self.conversations.store, self.embedder,
                                    cache, self.knowledge, self.loop, bus=self.bus)
        for tool in knowledge_tools.TOOLS:
            self.tools.register(tool)
        self.conversations.memory = self.memory
        self.conversations.hooks.before.append(self.memory.before_run)
        self.conversations.hooks.after.append(self.memory.after_run)

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.workspace_dir.mkdir(parents=True, exist_ok=True)
        self.logs.start()
        await self.db.migrate()
        self.db.start()
        await self.tracing.prune(self.settings.trace_retention_days)
        await self.agents.load(self.settings.agents_dir)
        self.agents.start()
        await self.bus.start()
        await self.provider_keys.load()
        await self.approvals.start()
        await self.triggers.start()

    async def warm_up(self) -> None:
        """Begin, in the background, what serving needs first: loading the models the agents
        use, and storing the memories an earlier process left. The web app calls it once
        started; the CLI's one-off commands do not."""
        self.memory.warm_up(self.agents.all())
        await self.memory.resume(self.agents.all())

    async def stop(self) -> None:
        await self.agents.stop()
        await self.triggers.stop()
        await self.session_worker.shutdown()
        await self.conversations.shutdown()
        await self.memory.stop()
        await self.tracing.shutdown()  # its spans go through the writer, closed next
        await self.writer.close()
        self.logs.stop()
        await self.providers.close()
        await self.bus.stop()
        await self.db.close()

    @property
    def uptime(self) -> float:
        return time.time() - self.started_at
