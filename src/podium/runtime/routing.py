"""Which model candidates a call tries, and in what order."""

from __future__ import annotations

from podium.runtime.agent import ModelConfig, ModelRef


class ModelRouter:
    """Orders an agent's candidates by its routing strategy (here: priority order)."""

    def candidates(self, config: ModelConfig, *, needs_tools: bool = False) -> list[ModelRef]:
        return config.candidates
