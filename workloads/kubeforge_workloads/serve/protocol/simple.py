"""The plain /predict form and KServe v1 (`instances` in, `predictions` out)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from ..dataplane import Prediction
from ..errors import InvalidSchema, validation_error

Body = TypeVar("Body", bound=BaseModel)


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


def parse_body(model: type[Body], raw: bytes) -> Body:
    """Validate a JSON body as FastAPI would: 400 for malformed JSON, 422 naming the field for a wrong shape."""
    if not raw.strip():
        raise InvalidSchema("body: Field required")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def body_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema with its $defs inlined, to document a body the route parses itself."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(schema)
