"""Counting and cutting text by tokens, as OSWorld's agent cuts its accessibility table.

Upstream counts with tiktoken's encoding for "gpt-4" (cl100k_base), keeps the first
`max_tokens` tokens and appends "[...]\\n". tiktoken is an optional extra here
(`pip install .[parity]`) and its encodings are files it downloads on first use, which a harness
must never do behind a user's back (CI and many clusters have no route to the public host). So
the encoding is used only when it loads from the local cache (TIKTOKEN_CACHE_DIR or tiktoken's
default cache folder); every remote read is refused while loading. Otherwise `a11y.estimate_tokens`
counts, and the caller records which counter it was (`COUNTER_TIKTOKEN` / `COUNTER_ESTIMATE`).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from search.a11y import estimate_tokens

UPSTREAM_MODEL = "gpt-4"  # the model whose encoding upstream's cut uses
COUNTER_ESTIMATE = "estimate"
COUNTER_TIKTOKEN = "tiktoken"
CUT_MARK = "[...]\n"  # upstream appends this after a cut

_lock = threading.Lock()
_loaded = False
_encoding: Any = None
_why_not: str = ""


class _NoDownload(RuntimeError):
    pass


def _refuse_remote(path: str) -> bytes:
    if "://" in path:
        raise _NoDownload(f"not in the local tiktoken cache: {path.rsplit('/', 1)[-1]}")
    with open(path, "rb") as f:
        return f.read()


def _load() -> None:
    """Load the encoding once, from the local cache only (never a download)."""
    global _loaded, _encoding, _why_not
    try:
        import tiktoken
        import tiktoken.load as tiktoken_load
    except ImportError:
        _why_not = "tiktoken is not installed (pip install .[parity])"
        return
    # tiktoken fetches a missing file with its module-level `read_file`; swap it for one that only
    # reads local paths, for the duration of this load (under our lock; loads happen once).
    original = tiktoken_load.read_file
    tiktoken_load.read_file = _refuse_remote
    try:
        _encoding = tiktoken.encoding_for_model(UPSTREAM_MODEL)
    except Exception as e:  # _NoDownload, a corrupt cache file, an unknown model name
        _why_not = f"tiktoken encoding for {UPSTREAM_MODEL} unavailable offline ({e})"
    finally:
        tiktoken_load.read_file = original


def encoding() -> Any:
    """tiktoken's encoding for upstream's model, or None when it cannot be loaded offline."""
    global _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                _load()
                _loaded = True
    return _encoding


def counter_name() -> str:
    """Which counter `cut_to_tokens` uses in this process."""
    return COUNTER_TIKTOKEN if encoding() is not None else COUNTER_ESTIMATE


def why_estimate() -> str:
    """Why the estimate is used ('' when tiktoken is)."""
    encoding()
    return _why_not


def _reset_for_tests() -> None:
    global _loaded, _encoding, _why_not
    with _lock:
        _loaded, _encoding, _why_not = False, None, ""


_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def _estimate_prefix(text: str, max_tokens: int) -> int:
    """Length of the longest prefix whose estimate is at most `max_tokens` (the estimate of a
    prefix never exceeds that of the whole, so one left-to-right pass finds it)."""
    used = 0
    for m in _TOKEN.finditer(text):
        s = m.group()
        cost = estimate_tokens(s)
        if used + cost > max_tokens:
            if s[0].isalpha() or s[0].isdigit():
                per = 6 if s[0].isalpha() else 3  # letters and digits one estimated token takes
                return m.start() + (max_tokens - used) * per
            return m.start()
        used += cost
    return len(text)


def cut_to_tokens(text: str, max_tokens: int) -> tuple[str, str]:
    """Upstream's cut: over `max_tokens` tokens, keep the first `max_tokens` and append "[...]\\n".

    Returns (text, counter). The cut may fall inside a row or a word, as upstream's does.
    """
    enc = encoding()
    if enc is not None:
        tokens = enc.encode(text, disallowed_special=())
        if len(tokens) > max_tokens:
            return enc.decode(tokens[:max_tokens]) + CUT_MARK, COUNTER_TIKTOKEN
        return text, COUNTER_TIKTOKEN
    # Every estimated token takes at least one character: a text no longer than the budget fits.
    if len(text) <= max_tokens or estimate_tokens(text) <= max_tokens:
        return text, COUNTER_ESTIMATE
    return text[:_estimate_prefix(text, max_tokens)] + CUT_MARK, COUNTER_ESTIMATE
