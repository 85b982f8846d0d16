"""One example of an episode as one JSONL line in OpenAI's chat fine-tuning format.

Example k = the system prompt, the turns before k as history, turn k's observation and its
answer; only that last answer has weight 1. History is bounded the way the agent bounds its own
prompt: the last `history_turns` turns are kept, and only the last `obs_window` earlier
observations keep their screenshot and table (older ones are named, not shown), so an example
stays under the image and token limits however long the search ran. An example still over
`max_example_tokens` loses its oldest turns until it fits.

Images are read once per episode (a dict of the episode's screenshots, freed with it), so memory
is bounded by one task at a time per worker.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from results.export.episodes import Episode, Obs
from results.export.tokens import PER_MESSAGE, image_kind, image_size, image_tokens, text_tokens
from search import prompts

OMITTED = "(an earlier observation, not shown)"


@dataclass(frozen=True)
class RenderOptions:
    images: str = "data-url"  # or "path"
    observation_type: str = "screenshot"
    history_turns: int = 20
    obs_window: int = 3
    detail: str = "high"
    max_example_tokens: int = 65_536


@dataclass
class Image:
    url: str
    tokens: int


@dataclass
class Rendered:
    line: bytes
    digest: bytes
    tokens: int
    images: int


@dataclass
class ImageCache:
    """The episode's screenshots, each read once."""

    options: RenderOptions
    items: dict[Path, Image | None] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def get(self, path: Path | None) -> Image | None:
        if path is None:
            return None
        if path in self.items:
            return self.items[path]
        image = None
        try:
            if self.options.images == "path":
                with open(path, "rb") as f:
                    head = f.read(64)
                kind, url = image_kind(head), str(path.resolve())
            else:
                data = path.read_bytes()
                head, kind = data[:64], image_kind(data[:64])
                url = f"data:{kind};base64," + base64.b64encode(data).decode("ascii") if kind else ""
            if kind is not None:
                image = Image(url, image_tokens(image_size(head), self.options.detail))
            else:
                self.missing.append(f"{path.name}: not a PNG, JPEG or WEBP image")
        except OSError:
            self.missing.append(f"{path.name}: missing")
        self.items[path] = image
        return image


def _user(obs: Obs, o: RenderOptions, cache: ImageCache, *, shown: bool) -> tuple[dict[str, Any], int, int]:
    """A user message; returns it with its token estimate and image count."""
    kind = o.observation_type
    if not shown:
        text = obs.note + OMITTED
        return {"role": "user", "content": text}, PER_MESSAGE + text_tokens(text), 0
    with_table = kind != "screenshot"
    text = obs.note + prompts.observation_text(kind if with_table else "screenshot", obs.table if with_table else None,
                                               current=True)
    image = cache.get(obs.image) if kind != "a11y_tree" else None
    if kind != "a11y_tree" and image is None:
        text = "(no screenshot was recorded for this state)\n" + text
    tokens = PER_MESSAGE + text_tokens(text)
    if image is None:
        return {"role": "user", "content": text}, tokens, 0
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": image.url, "detail": o.detail}}]
    return {"role": "user", "content": content}, tokens + image.tokens, 1


def render(episode: Episode, k: int, o: RenderOptions, cache: ImageCache) -> Rendered | None:
    """Example k of `episode`; None if even its last turn alone exceeds the token limit."""
    start = max(0, k - o.history_turns)
    while True:
        messages: list[dict[str, Any]] = [{"role": "system", "content": episode.system}]
        tokens, images = PER_MESSAGE + text_tokens(episode.system), 0
        for i in range(start, k + 1):
            turn = episode.turns[i]
            shown = i == k or k - i <= o.obs_window
            user, t, n = _user(turn.obs, o, cache, shown=shown)
            if i == start and start > 0:
                note = f"({start} earlier step(s) of this episode not shown)\n"
                if isinstance(user["content"], str):
                    user["content"] = note + user["content"]
                else:
                    user["content"][0]["text"] = note + user["content"][0]["text"]
            messages.append(user)
            messages.append({"role": "assistant", "content": turn.reply, "weight": 1 if i == k else 0})
            tokens += t + PER_MESSAGE + text_tokens(turn.reply)
            images += n
        if tokens <= o.max_example_tokens:
            break
        if start == k:
            return None
        start += max(1, (k - start) // 4)  # drop the oldest quarter of the history and retry
    line = orjson.dumps({"messages": messages})
    return Rendered(line, hashlib.blake2b(line, digest_size=16).digest(), tokens, images)
