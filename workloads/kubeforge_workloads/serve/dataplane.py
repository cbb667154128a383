"""The transport-agnostic data plane: health, metadata and classification, whatever protocol asked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batcher import DynamicBatcher
from .errors import InvalidInput, ModelNotReady
from .model import TextClassificationModel
from .repository import ModelRepository


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probabilities: np.ndarray  # one per label, in label order


class RequestCounter:
    """Inference requests being served: body read, answer not yet sent. The batcher and the gauge read it."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


class DataPlane:
    def __init__(self, repository: ModelRepository, max_texts: int):
        self.repository = repository
        self.max_texts = max_texts
        self.in_flight = RequestCounter()  # counted by the transport once a request's body is read
        self.batcher: DynamicBatcher | None = None  # set once the model is loaded
        self.draining = False  # SIGTERM: readiness fails while requests are still served

    def not_ready_reason(self) -> str | None:
        """Why readiness should fail now (loading, draining, a hung model), or None when ready."""
        if self.batcher is None or not self.repository.all_ready():
            return "model is loading"
        if self.draining:
            return "shutting down"
        if self.batcher.stuck():
            return f"the model has not finished a batch in {self.batcher.request_timeout_s:g} s"
        return None

    def model(self, name: str) -> TextClassificationModel:
        """The named model (404 if unknown), whether or not it is ready."""
        return self.repository.get(name)

    def ready_model(self, name: str) -> TextClassificationModel:
        model = self.repository.get(name)
        if not (model.ready and self.batcher):
            raise ModelNotReady(f"model {name!r} is loading")
        return model

    def check_texts(self, texts: list[str]) -> None:
        if not texts:
            raise InvalidInput("at least one text is required")
        if len(texts) > self.max_texts:
            raise InvalidInput(f"{len(texts)} texts in one request; the limit is {self.max_texts}")

    async def classify(self, name: str, texts: list[str]) -> list[Prediction]:
        """Tokenize (400 for too long a text), queue for a batch (429 when full, 504 past the deadline),
        label the probabilities."""
        model = self.ready_model(name)
        self.check_texts(texts)
        rows = await self.batcher.submit(model.encode(texts))
        labels = model.labels
        return [Prediction(labels[int(p.argmax())], float(p.max()), p) for p in rows]
