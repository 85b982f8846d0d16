"""Where the prompt agent's system prompts come from: ours, or the user's own files.

The project ships only its own prompt texts (`search/prompts.py`). A user who wants OSWorld's
exact wording points `prompts_from` at their own copy:

- a Python file (e.g. `OSWorld/mm_agents/prompts.py`): read as DATA. The file is parsed with
  `ast`, never imported or executed; module-level assignments `NAME = "..."` are taken, where the
  value is a string literal, `+` of string literals, or a literal followed by `.strip()`,
  `.lstrip()` or `.rstrip()` (upstream ends each text with `.strip()`). Anything else is ignored.
- a folder of template files, one per constant: `<NAME>.txt` (UTF-8), e.g.
  `SYS_PROMPT_IN_A11Y_OUT_CODE.txt`.

The constant needed is upstream's name for the (observation type, action space) pair, see
`CONSTANT_NAMES`. `{CLIENT_PASSWORD}` in the text is replaced by the `password` option (by plain
replacement: upstream's `str.format` breaks on the JSON braces of its computer_13 prompts); no
other placeholder is touched. Every problem is a ConfigError of one line naming the file and what
was expected, raised when the agent is built, before any task starts.

`PromptSet.sha256` is the hash of the template text used (for the run record); each step also
records the hash of the exact system message sent (`system_sha256`) and of the text written to
`system_prompt.txt` (`system_file_sha256`): the same text, except that a password other than the
default is masked there, so neither the file nor an export built from it shows it.

A Ray run reads the file once, on the head, and ships the PromptSet (text and hash) to its
workers (`check_shipped`): a worker never re-reads a path that may not exist on its machine.

Files are checked for size before they are read (4 MB); one too deeply nested for Python's parser
(or for this reader) is one ConfigError line, like any other that does not parse.
"""

from __future__ import annotations

import ast
import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.base.errors import ConfigError

# (observation_type, action_space) -> the constant upstream's PromptAgent uses.
CONSTANT_NAMES: dict[tuple[str, str], str] = {
    ("screenshot", "pyautogui"): "SYS_PROMPT_IN_SCREENSHOT_OUT_CODE",
    ("screenshot", "computer_13"): "SYS_PROMPT_IN_SCREENSHOT_OUT_ACTION",
    ("a11y_tree", "pyautogui"): "SYS_PROMPT_IN_A11Y_OUT_CODE",
    ("a11y_tree", "computer_13"): "SYS_PROMPT_IN_A11Y_OUT_ACTION",
    ("screenshot_a11y_tree", "pyautogui"): "SYS_PROMPT_IN_BOTH_OUT_CODE",
    ("screenshot_a11y_tree", "computer_13"): "SYS_PROMPT_IN_BOTH_OUT_ACTION",
    ("som", "pyautogui"): "SYS_PROMPT_IN_SOM_OUT_TAG",
}
PASSWORD_PLACEHOLDER = "{CLIENT_PASSWORD}"
BUILTIN = "builtin"
# The system message an attempt sent, word for word, in its task folder: export trains on what the
# model saw (results/export/episodes.py) whichever prompts or profile the run used.
SYSTEM_PROMPT_FILE = "system_prompt.txt"
DEFAULT_PASSWORD = "password"  # the OSWorld image's, public; any other is masked in what we record
PASSWORD_MASK = "***"
_MAX_BYTES = 4 * 1024 * 1024  # a prompts file is text of some kB; refuse to read anything huge
_STRIPS = frozenset({"strip", "lstrip", "rstrip"})


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PromptSet:
    """The system prompt template of one run (None = ours, built per observation by prompts.py)."""

    source: str  # "builtin" or the resolved path the user gave
    name: str  # the constant (or our prompt's name) in use
    template: str | None
    sha256: str

    def render(self, password: str) -> str:
        assert self.template is not None
        return self.template.replace(PASSWORD_PLACEHOLDER, password)

    def describe(self) -> dict[str, str]:
        return {"source": self.source, "name": self.name, "sha256": self.sha256}


class _Unsupported(Exception):
    pass


def _string_value(node: ast.expr) -> str:
    """The value of a string-literal expression, without evaluating any code."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _string_value(node.left) + _string_value(node.right)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _STRIPS
            and not node.args and not node.keywords):
        value = _string_value(node.func.value)
        return getattr(value, node.func.attr)()
    raise _Unsupported


def _read_capped(path: Path, expected: str) -> bytes:
    """The file's bytes; its size is checked before reading (a FIFO or a huge file is refused)."""
    too_big = f"prompts_from {path}: larger than {_MAX_BYTES // 1024 // 1024} MB; expected {expected}"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"prompts_from {path}: not a regular file; expected {expected}")
        if info.st_size > _MAX_BYTES:
            raise ConfigError(too_big)
        with path.open("rb") as f:
            data = f.read(_MAX_BYTES + 1)  # the file may have grown since stat
    except OSError as e:
        raise ConfigError(f"prompts_from {path}: cannot read ({e.strerror or e}); expected {expected}") from None
    if len(data) > _MAX_BYTES:
        raise ConfigError(too_big)
    return data


def read_constants(path: Path) -> dict[str, str]:
    """Module-level string constants of a Python file, read with `ast` (never imported)."""
    data = _read_capped(path, "a prompts.py or a folder of <NAME>.txt templates")
    try:
        tree = ast.parse(data.decode("utf-8"), filename=str(path))
    except (RecursionError, MemoryError):
        raise ConfigError(f"prompts_from {path}: nested too deeply to parse; expected a prompts.py of "
                          "string constants") from None
    except (SyntaxError, ValueError, UnicodeDecodeError) as e:
        where = f" line {e.lineno}" if isinstance(e, SyntaxError) and e.lineno else ""
        raise ConfigError(f"prompts_from {path}:{where} not parseable as Python "
                          f"({type(e).__name__}); expected a prompts.py of string constants") from None
    out: dict[str, str] = {}
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        try:
            text = _string_value(value)
        except _Unsupported:
            continue
        except RecursionError:  # "a" + "a" + ... thousands deep: not a prompt we can read
            raise ConfigError(f"prompts_from {path}: line {stmt.lineno}: an expression nested too deeply; "
                              "expected string constants") from None
        for target in targets:
            if isinstance(target, ast.Name):
                out[target.id] = text
    return out


def load_prompt_set(prompts_from: str | None, observation_type: str, action_space: str) -> PromptSet | None:
    """The user's template for this run, or None for ours. Raises ConfigError (one line)."""
    if prompts_from is None:
        return None
    name = CONSTANT_NAMES.get((observation_type, action_space))
    if name is None:
        raise ConfigError(f"prompts_from {prompts_from}: no upstream prompt for observation_type "
                          f"{observation_type!r} with action_space {action_space!r}")
    path = Path(prompts_from).expanduser()
    where = f"observation_type={observation_type}, action_space={action_space}"
    if path.is_dir():
        file = path / f"{name}.txt"
        if not file.exists():
            raise ConfigError(f"prompts_from {path}: no file {name}.txt (needed for {where})")
        try:
            template = _read_capped(file, "a UTF-8 text template").decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"prompts_from {file}: cannot read as UTF-8 text ({e})") from None
    elif not path.exists():
        raise ConfigError(f"prompts_from {path}: no such file or folder; expected a prompts.py "
                          "or a folder of <NAME>.txt templates")
    else:
        constants = read_constants(path)
        if name not in constants:
            raise ConfigError(f"prompts_from {path}: no module-level string constant {name} (needed for {where})")
        template = constants[name]
    if not template.strip():
        raise ConfigError(f"prompts_from {path}: {name} is empty; expected the system prompt text")
    return PromptSet(source=str(path.resolve()), name=name, template=template, sha256=sha256(template))


def check_shipped(prompts: PromptSet, observation_type: str, action_space: str) -> PromptSet:
    """A PromptSet another process read (the head of a Ray run): it must be the template this
    agent's options need and its text must still hash to the head's hash."""
    name = CONSTANT_NAMES.get((observation_type, action_space))
    if not isinstance(prompts, PromptSet) or prompts.template is None or prompts.name != name:
        raise ConfigError(f"prompts_from: the shipped template is not {name} (observation_type={observation_type}, "
                          f"action_space={action_space})")
    if sha256(prompts.template) != prompts.sha256:
        raise ConfigError(f"prompts_from {prompts.source}: the shipped template does not match its hash")
    return prompts
