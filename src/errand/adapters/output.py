"""A framework's final output as an errand Result: text, plus the structured value if it was one."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import BaseModel

from errand.models import Result

__all__ = ["to_result"]


def to_result(output: Any, agent_id: str, extra: dict[str, Any]) -> Result:
    """A str is the text; a typed output (pydantic model, dataclass, dict...) is kept under
    `output` as JSON data and its JSON is the text, so a client reading `text` sees it all."""
    if isinstance(output, str):
        return Result(output, agent_id, extra)
    if isinstance(output, BaseModel):
        data: Any = output.model_dump(mode="json")
    elif dataclasses.is_dataclass(output) and not isinstance(output, type):
        data = dataclasses.asdict(output)
    else:
        data = output
    return Result(json.dumps(data, default=str), agent_id, {**extra, "output": data})
