"""Keep secrets out of everything the run directory writes (run.json, journal, results)."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Field names that hold secrets. Substring match, as broad as "no key in logs or results": a false
# positive ("keyboard") only hides a harmless value, a false negative would leak a key.
_SECRET_NAME = re.compile(r"key|token|secret|passw|credential|authorization|cookie", re.IGNORECASE)

# Values that look like API keys wherever they appear (also inside longer strings such as
# "Bearer sk-..." or an error message quoting a header).
_SECRET_VALUE = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style (sk-..., sk-proj-..., sk-ant-...)
    r"|\bAIza[0-9A-Za-z_\-]{30,}"  # Google API keys
    r"|\bhf_[A-Za-z0-9]{20,}"  # Hugging Face tokens
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key ids
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9_\-.=+/]{8,}")

try:  # keys the LLM layer registered when it resolved providers (any shape, not only sk-...)
    from harness.base.redact import redact as _registered_secrets
except ImportError:  # results/ works without the LLM layer
    _registered_secrets = None


def redact_text(text: str) -> str:
    """Replace anything that looks like an API key inside `text` with the mask."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", _SECRET_VALUE.sub(MASK, text))
    return _registered_secrets(text) if _registered_secrets is not None else text


def redact(value: Any, *, by_name: bool = True) -> Any:
    """A copy of a JSON-like value with key-like strings masked, and (`by_name`) every string
    field whose name looks secret. Configs use both; trajectories and journal fields use only
    the value rule, since an action like {"key": "enter"} is not a secret.
    """
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if by_name and isinstance(v, str) and isinstance(k, str) and is_secret_name(k):
                out[k] = MASK
            else:
                out[k] = redact(v, by_name=by_name)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, by_name=by_name) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
