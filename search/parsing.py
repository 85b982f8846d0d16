"""Turn a model's reply into actions, OSWorld-style: a list of actions per reply.

pyautogui replies: every fenced code block is one action (in order); a block that is just WAIT,
DONE or FAIL is that special action; a block whose last line is one of them yields the code and
then the special action (as upstream). A reply that is only the special word (bare, in
backticks, bold, or with a trailing period) is that action; prose whose last line is an
upper-case special word is too. A reply with no fence that is valid Python calling pyautogui is
taken as one code action. Unlike upstream we never split on `;` (it breaks
`typewrite("a; b")`), we skip blocks tagged with a non-Python language (```bash, ```text), and we
skip blocks holding only comments.

computer_13 replies: fenced blocks (any tag) or bare text holding JSON objects (or Python dict
literals) with an `action_type`; a block may hold a list of them. Special actions come back as
the plain strings "WAIT"/"DONE"/"FAIL".

Nothing here raises on a bad reply: `Parsed.error` says what was wrong and the agent records it
as that step's error.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

SPECIALS = ("WAIT", "DONE", "FAIL")
ActionSpace = Literal["pyautogui", "computer_13"]

# ``` + optional info string on the opening line + optional body up to the next ```.
_FENCE = re.compile(r"```[ \t]*([^\n`]*?)[ \t]*(?:\r?\n(.*?))?```", re.DOTALL)
_PYTHON_TAGS = frozenset({"", "python", "python3", "py", "pyautogui", "code"})
_DECORATION = " \t\r\n`*_\"'.!:;"
_LANG_TAG = re.compile(r"^[\w+#-]+$")


@dataclass(frozen=True, slots=True)
class Parsed:
    """The actions of one reply (in order), or why there are none."""

    actions: list[Any] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def special_word(text: str, *, case_sensitive: bool = False) -> str | None:
    """'WAIT'/'DONE'/'FAIL' when `text` is only that word, allowing markdown decoration."""
    word = text.strip(_DECORATION)
    if not case_sensitive:
        word = word.upper()
    return word if word in SPECIALS else None


def _blocks(text: str) -> list[tuple[str, str]]:
    """(info, body) of each closed fenced block; an inline ```WAIT``` has the word as its body."""
    out = []
    for m in _FENCE.finditer(text):
        info, body = m.group(1).strip(), m.group(2)
        if body is None or not body.strip():
            # ```WAIT``` / ```DONE\n``` / ```python pyautogui.click(1, 2)``` / ```python\n```
            first, _, rest = info.partition(" ")
            if rest and first.lower() in _PYTHON_TAGS:
                info, body = first, rest
            elif special_word(info) or not _LANG_TAG.match(info):
                info, body = "", info
            else:
                continue  # an empty block with only a language tag
        out.append((info.lower(), body))
    return out


def _is_code(body: str) -> bool:
    """True when the body has at least one statement (not only comments/blank lines)."""
    try:
        return bool(ast.parse(body).body)
    except SyntaxError:
        return True  # let the guest report it, as upstream does
    except ValueError:  # null bytes
        return False


def _unclosed_fence(text: str) -> bool:
    return text.count("```") % 2 == 1


def parse_pyautogui(reply: str) -> Parsed:
    if not reply or not reply.strip():
        return Parsed(error="empty reply: expected a ```python code block or WAIT/DONE/FAIL")
    whole = special_word(reply)
    if whole:
        return Parsed([whole])
    actions: list[Any] = []
    notes: list[str] = []
    blocks = _blocks(reply)
    for info, body in blocks:
        body = body.strip("\r\n")
        stripped = body.strip()
        special = special_word(stripped)
        if special:
            actions.append(special)
            continue
        if info not in _PYTHON_TAGS:
            notes.append(f"skipped a ```{info} block (not Python)")
            continue
        lines = stripped.splitlines()
        tail = special_word(lines[-1], case_sensitive=True) if len(lines) > 1 else None
        code = "\n".join(lines[:-1]) if tail else body
        if _is_code(code):
            actions.append(_dedent(code))
        else:
            notes.append("skipped a code block with no statements")
        if tail:
            actions.append(tail)
    if actions:
        return Parsed(actions, notes=notes)
    tail = special_word(reply.strip().splitlines()[-1], case_sensitive=True)
    if tail:
        return Parsed([tail], notes=[*notes, "special action taken from the reply's last line"])
    if not blocks:
        if "pyautogui." in reply and not _unclosed_fence(reply):
            try:
                if ast.parse(reply.strip()).body:
                    return Parsed([_dedent(reply.strip("\r\n"))], notes=["unfenced code taken as one action"])
            except (SyntaxError, ValueError):
                pass
    if _unclosed_fence(reply):
        return Parsed(error="unterminated ``` code block (reply cut off at max_tokens?)", notes=notes)
    why = "; ".join(notes) if notes else "no ```python code block and no WAIT/DONE/FAIL"
    return Parsed(error=f"no executable action in the reply: {why}", notes=notes)


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code).strip("\n")


# --- computer_13 -----------------------------------------------------------------------------------


def _normalize_action(obj: Any) -> Any:
    """A computer_13 dict with an upper-case action_type; special actions as plain strings."""
    if isinstance(obj, str):
        return special_word(obj)
    if not isinstance(obj, dict) or not isinstance(obj.get("action_type"), str):
        return None
    kind = obj["action_type"].strip().upper()
    if kind in SPECIALS:
        return kind
    return {**obj, "action_type": kind}


def _load(text: str) -> Any:
    """JSON, else a Python literal (models often write True/None or single quotes)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise json_error from None


def _scan_objects(text: str) -> list[Any]:
    """Every top-level JSON object found anywhere in prose, left to right."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i += 1
            continue
        found.append(obj)
        i = end
    return found


def parse_computer13(reply: str) -> Parsed:
    if not reply or not reply.strip():
        return Parsed(error="empty reply: expected a computer_13 action as JSON or WAIT/DONE/FAIL")
    whole = special_word(reply)
    if whole:
        return Parsed([whole])
    candidates: list[Any] = []
    errors: list[str] = []
    blocks = _blocks(reply)
    for _, body in blocks:
        special = special_word(body)
        if special:
            candidates.append(special)
            continue
        try:
            loaded = _load(body.strip())
        except json.JSONDecodeError as e:
            errors.append(f"a code block is not JSON ({e.msg} at line {e.lineno} column {e.colno})")
            continue
        candidates.extend(loaded if isinstance(loaded, list) else [loaded])
    if errors:  # a skipped block could be a step the later ones depend on: run none of them
        return Parsed(error="; ".join(errors))
    if not blocks:
        try:
            loaded = _load(reply.strip())
            candidates.extend(loaded if isinstance(loaded, list) else [loaded])
        except json.JSONDecodeError:
            candidates.extend(_scan_objects(reply))
            if not candidates:
                tail = special_word(reply.strip().splitlines()[-1], case_sensitive=True)
                if tail:
                    candidates.append(tail)
    actions = []
    for c in candidates:
        action = _normalize_action(c)
        if action is None:
            return Parsed(error=f"not a computer_13 action (needs an action_type): {str(c)[:120]!r}")
        actions.append(action)
    if actions:
        return Parsed(actions)
    return Parsed(error="no computer_13 action in the reply: expected a JSON object with action_type, or WAIT/DONE/FAIL")


def parse_reply(reply: str, action_space: ActionSpace) -> Parsed:
    if action_space == "computer_13":
        return parse_computer13(reply)
    return parse_pyautogui(reply)
