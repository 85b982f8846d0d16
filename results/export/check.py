"""`export --check F`: does a JSONL file follow OpenAI's chat fine-tuning format? Which line breaks
which rule. Streaming: one line in memory at a time, so a multi-GB file checks in bounded memory.

Rules (sources in docs/design/exploratory-learning.md): every line one JSON object with a
non-empty `messages` list; roles system/user/assistant/tool(/function); known message keys only;
content a string or a list of `text` / `image_url` parts; images only in user messages, as data
URLs (or http(s) URLs) of JPEG/PNG/WEBP, at most `max_image_bytes` each and
`max_images_per_example` per example; `weight` only on assistant messages and 0 or 1; at least one
assistant message that is trained (weight 1 or absent); an estimated `max_example_tokens` per
example; at most `max_image_examples` examples with images; the file at most `max_file_bytes`;
at least `min_examples` examples.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from results.export.limits import (
    DEFAULT_LIMITS,
    IMAGE_DETAIL,
    IMAGE_MIME,
    MESSAGE_KEYS,
    ROLES,
    TOP_LEVEL_KEYS,
    Limits,
)
from results.export.tokens import PER_MESSAGE, image_kind, image_size, image_tokens, text_tokens


@dataclass
class Problem:
    line: int  # 1-based; 0 for a rule about the whole file
    rule: str
    message: str

    def format(self, path: Path) -> str:
        where = f"{path}:{self.line}" if self.line else str(path)
        return f"{where}: [{self.rule}] {self.message}"


@dataclass
class CheckResult:
    path: Path
    examples: int = 0
    bytes: int = 0
    images: int = 0
    image_examples: int = 0
    tokens: int = 0
    trained_turns: int = 0
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0  # problems beyond the ones kept

    @property
    def ok(self) -> bool:
        return not self.problems and not self.more_problems


class _Example:
    """One line's checks; collects problems into the result."""

    def __init__(self, line: int, result: CheckResult, limits: Limits, allow_paths: bool, base: Path) -> None:
        self.line, self.result, self.limits, self.allow_paths, self.base = line, result, limits, allow_paths, base
        self.images = 0
        self.tokens = 0
        self.bad = False
        self.bad_weight = False

    def fail(self, rule: str, message: str) -> None:
        self.bad = True
        _add(self.result, Problem(self.line, rule, message))

    def check(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            return self.fail("line_not_object", f"expected a JSON object, got {type(obj).__name__}")
        unknown = sorted(set(obj) - TOP_LEVEL_KEYS)
        if unknown:
            self.fail("unknown_key", f"top-level key(s) {unknown} not in the format (expected 'messages')")
        messages = obj.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.fail("missing_messages", "'messages' must be a non-empty list")
        trained = 0
        assistants = 0
        for i, m in enumerate(messages):
            trained_here = self.message(i, m)
            if isinstance(m, dict) and m.get("role") == "assistant":
                assistants += 1
                trained += trained_here
        if not assistants:
            self.fail("no_assistant", "no assistant message: nothing to train on")
        elif not trained and not self.bad_weight:  # a bad weight is already the reason
            self.fail("no_trained_assistant", "every assistant message has weight 0: nothing to train on")
        self.result.trained_turns += trained
        if self.images > self.limits.max_images_per_example:
            self.fail("too_many_images",
                      f"{self.images} images; at most {self.limits.max_images_per_example} per example")
        if self.tokens > self.limits.max_example_tokens:
            self.fail("too_many_tokens", f"about {self.tokens} tokens (estimate); "
                      f"at most {self.limits.max_example_tokens} per example (--max-example-tokens)")

    def message(self, i: int, m: Any) -> int:
        """Checks message i; returns 1 if it is a trained assistant message."""
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            self.fail("message_not_object", f"{where}: expected an object, got {type(m).__name__}")
            return 0
        role = m.get("role")
        if role not in ROLES:
            self.fail("bad_role", f"{where}.role: {role!r}; expected one of {', '.join(sorted(ROLES))}")
        unknown = sorted(set(m) - MESSAGE_KEYS)
        if unknown:
            self.fail("unknown_message_key", f"{where}: key(s) {unknown} not allowed in a message")
        trained = 0
        if "weight" in m:
            w = m["weight"]
            if role != "assistant":
                self.fail("weight_not_assistant", f"{where}.weight: only assistant messages may have a weight")
            elif isinstance(w, bool) or w not in (0, 1):
                self.bad_weight = True
                self.fail("bad_weight", f"{where}.weight: {w!r}; expected 0 or 1")
            else:
                trained = int(w)
        elif role == "assistant":
            trained = 1
        self.tokens += PER_MESSAGE
        content = m.get("content")
        if content is None:
            if role == "assistant" and (m.get("tool_calls") or m.get("function_call")):
                return trained
            self.fail("missing_content", f"{where}.content: missing (a string or a list of parts)")
        elif isinstance(content, str):
            self.tokens += text_tokens(content)
        elif isinstance(content, list):
            if not content:
                self.fail("empty_content", f"{where}.content: empty list")
            for j, part in enumerate(content):
                self.part(f"{where}.content[{j}]", role, part)
        else:
            self.fail("bad_content", f"{where}.content: {type(content).__name__}; expected a string or a list of parts")
        return trained

    def part(self, where: str, role: Any, part: Any) -> None:
        if not isinstance(part, dict):
            return self.fail("bad_part", f"{where}: expected an object, got {type(part).__name__}")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                return self.fail("bad_text_part", f"{where}.text: expected a string")
            self.tokens += text_tokens(text)
            return None
        if kind != "image_url":
            return self.fail("bad_part_type", f"{where}.type: {kind!r}; expected 'text' or 'image_url'")
        if role != "user":
            self.fail("image_not_in_user", f"{where}: images may appear only in user messages (role {role!r})")
        self.images += 1
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url:
            return self.fail("bad_image_url", f"{where}.image_url.url: expected a string")
        detail = image.get("detail") if isinstance(image, dict) else None
        if detail is not None and detail not in IMAGE_DETAIL:
            self.fail("bad_image_detail", f"{where}.image_url.detail: {detail!r}; expected low, high or auto")
        self.image(where, url, detail)
        return None

    def image(self, where: str, url: str, detail: str | None) -> None:
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            mime = header[5:].split(";")[0]
            if mime not in IMAGE_MIME or not header.endswith(";base64"):
                return self.fail("bad_image_type", f"{where}: data URL of {header[:40]!r}; expected "
                                 "data:image/(jpeg|png|webp);base64,...")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as e:
                return self.fail("bad_image_data", f"{where}: base64 payload does not decode ({e})")
            self.image_bytes(where, data[:4096], len(data), mime, detail)
            return None
        if url.startswith(("http://", "https://")):
            self.tokens += image_tokens(None, detail)  # not fetched: the trainer checks it
            return None
        if not self.allow_paths:
            return self.fail("image_path", f"{where}: {url[:80]!r} is a local path; the fine-tuning API needs a "
                             "data URL or an http(s) URL (export with --images data-url, or --allow-image-paths)")
        path = Path(url[7:] if url.startswith("file://") else url)
        path = path if path.is_absolute() else self.base / path
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
                size = os.fstat(f.fileno()).st_size
        except OSError as e:
            return self.fail("image_missing", f"{where}: cannot read {path} ({e.strerror})")
        self.image_bytes(where, head, size, None, detail)
        return None

    def image_bytes(self, where: str, head: bytes, size: int, mime: str | None, detail: str | None) -> None:
        real = image_kind(head)
        if real is None:
            self.fail("bad_image_type", f"{where}: not a JPEG, PNG or WEBP image")
        elif mime is not None and real != mime:
            self.fail("bad_image_type", f"{where}: data URL says {mime} but the bytes are {real}")
        if size > self.limits.max_image_bytes:
            self.fail("image_too_large", f"{where}: {size} bytes; at most {self.limits.max_image_bytes} per image")
        self.tokens += image_tokens(image_size(head), detail)


MAX_KEPT = 200  # problems listed; the rest are counted


def _add(result: CheckResult, problem: Problem) -> None:
    if len(result.problems) < MAX_KEPT:
        result.problems.append(problem)
    else:
        result.more_problems += 1


def check_file(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS, *,
               allow_image_paths: bool = False) -> CheckResult:
    """Check every line of `path`; never raises on bad content (problems are returned)."""
    path = Path(path)
    result = CheckResult(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        _add(result, Problem(0, "unreadable", f"cannot open ({e.strerror})"))
        return result
    with f:
        for number, raw in enumerate(f, 1):
            result.bytes += len(raw)
            line = raw.rstrip(b"\r\n")
            example = _Example(number, result, limits, allow_image_paths, path.parent)
            if not line.strip():
                example.fail("empty_line", "empty line (every line must be one JSON object)")
                continue
            result.examples += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                example.fail("invalid_json", f"not valid JSON ({e})")
                continue
            example.check(obj)
            result.images += example.images
            result.image_examples += bool(example.images)
            result.tokens += example.tokens
    if result.bytes > limits.max_file_bytes:
        _add(result, Problem(0, "file_too_large", f"{result.bytes} bytes; at most {limits.max_file_bytes} per file "
                             "(--max-file-bytes; split the export with --max-examples or fewer images)"))
    if result.image_examples > limits.max_image_examples:
        _add(result, Problem(0, "too_many_image_examples", f"{result.image_examples} examples with images; at most "
                             f"{limits.max_image_examples} per file"))
    if result.examples < limits.min_examples:
        _add(result, Problem(0, "too_few_examples", f"{result.examples} examples; at least {limits.min_examples} "
                             "(--min-examples)"))
    return result
