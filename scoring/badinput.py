"""Which evaluator failures are the agent's (a 0 with the reason) and which are ours (an
evaluation error, never a silent 0).

Metrics raise `BadInput` when a file they were handed cannot be read (missing, empty, corrupt),
usually through `opened()`, which wraps whatever a parser raises while opening a file. Parse
errors raised by the libraries themselves (zipfile, openpyxl, python-docx, PIL, PyMuPDF, lxml,
json) count the same way wherever they surface. Anything else a metric raises (TypeError,
KeyError, AttributeError, ValueError, ...) is a bug in our metric or a task it cannot handle:
an evaluation error, recorded on the result and counted in the summary.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class NothingFound(Exception):
    """A getter found nothing to compare, or the guest's state is not what it can read (its metric
    scores 0 with this reason). Getters raise it, or a subclass, for an expected failure; anything
    else they raise that is not a parse error (`is_bad_input`) is an evaluation error."""


class BadInput(Exception):
    """A file handed to a metric cannot be read as what the metric expects (its metric scores 0)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


@functools.cache
def parse_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "this input is not a well-formed file of its kind"."""
    kinds: list[type[BaseException]] = [zipfile.BadZipFile, zipfile.LargeZipFile, json.JSONDecodeError,
                                        UnicodeDecodeError, FileNotFoundError, IsADirectoryError, EOFError,
                                        sqlite3.DatabaseError]
    for module, name in (("lxml.etree", "XMLSyntaxError"), ("xml.etree.ElementTree", "ParseError"),
                         ("openpyxl.utils.exceptions", "InvalidFileException"),
                         ("docx.opc.exceptions", "PackageNotFoundError"), ("PIL", "UnidentifiedImageError"),
                         ("pymupdf", "FileDataError"), ("pymupdf", "EmptyFileError"), ("yaml", "YAMLError")):
        try:
            kinds.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return tuple(kinds)


def is_bad_input(exc: BaseException) -> bool:
    return isinstance(exc, (BadInput, *parse_errors()))


@contextmanager
def opened(path: str | None, what: str) -> Iterator[None]:
    """Inside: any exception (the parser's, even a KeyError for a zip without the expected part)
    becomes BadInput naming `path`: it is the file's fault, not ours."""
    if not path:
        raise BadInput(f"no {what} file", path)
    try:
        yield
    except BadInput:
        raise
    except Exception as e:
        raise BadInput(f"{path}: not a readable {what} ({type(e).__name__}: {e})"[:300], path) from e


def load(loader: Callable[[str], T], path: str | None, what: str) -> T:
    """`loader(path)`, with every failure a BadInput (see `opened`)."""
    with opened(path, what):
        return loader(path)  # type: ignore[arg-type]


def read_text_bytes(path: str | None, what: str, kind: str) -> bytes:
    """The bytes of a text file a metric reads; BadInput when it is absent, unreadable, or binary
    (a NUL byte: not a `kind`)."""
    if not path:
        raise BadInput(f"no {what} file", path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadInput(f"{what} {path}: cannot be read ({type(e).__name__}: {e})", path) from e
    if b"\0" in data:
        raise BadInput(f"{what} {Path(path).name}: binary data, not {kind}", path)
    return data


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def as_paths(value: Any) -> list[str]:
    """The file paths in a getter's value (a path or a list of them)."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str)]
