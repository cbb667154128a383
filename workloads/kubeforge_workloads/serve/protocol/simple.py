"""The plain /predict form and KServe v1 (`instances` in, `predictions` out)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from ..dataplane import Prediction


class PredictRequest(BaseModel):
    """{"texts": ["...", ...]} or {"text": "..."}."""

    texts: list[str] | None = Field(default=None, description="texts to classify")
    text: str | None = Field(default=None, description="a single text (shorthand)")

    @model_validator(mode="after")
    def one_of_text_or_texts(self):
        if (self.texts is None) == (self.text is None):
            raise ValueError("give exactly one of 'texts' (a list) or 'text' (a string)")
        return self

    def all_texts(self) -> list[str]:
        return self.texts if self.texts is not None else [self.text]


class TextInstance(BaseModel):
    text: str


class V1PredictRequest(BaseModel):
    """KServe v1: {"instances": ["...", {"text": "..."}]}."""

    instances: list[str | TextInstance]

    def all_texts(self) -> list[str]:
        return [i if isinstance(i, str) else i.text for i in self.instances]


def prediction_dicts(preds: list[Prediction], labels: tuple[str, ...]) -> list[dict]:
    return [{"label": p.label, "score": p.score,
             "scores": {label: float(v) for label, v in zip(labels, p.probabilities)}} for p in preds]
