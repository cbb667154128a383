"""The model repository: the models this server serves, by name (one per ModelEndpoint pod today)."""

from __future__ import annotations

from .errors import ModelNotFound
from .model import TextClassificationModel


class ModelRepository:
    def __init__(self) -> None:
        self._models: dict[str, TextClassificationModel] = {}

    def add(self, model: TextClassificationModel) -> None:
        self._models[model.name] = model

    def get(self, name: str) -> TextClassificationModel:
        try:
            return self._models[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def names(self) -> list[str]:
        return sorted(self._models)

    def all_ready(self) -> bool:
        return bool(self._models) and all(m.ready for m in self._models.values())
