"""Chrome getters that read the profile's files: Preferences, Local State, Bookmarks, History,
Cookies, installed extensions, and the desktop's shortcut files.

Files come from the guest (`~/.config/google-chrome/...`, the google-chrome wrapper's explicit
--user-data-dir); JSON and sqlite are parsed in worker threads. On a missing or unreadable file
each getter returns what upstream returns in its `except` branch (often a default such as
"Google" or "false"), so scores match OSWorld's.
"""

from __future__ import annotations

import json
import posixpath
import sqlite3
from collections.abc import Callable
from typing import Any

import anyio
import orjson

from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from scoring.getters.guest_files import fetch_to_work
from scoring.registry import getter
from scoring.settings import settings_of
from vm.types import Guest

PROFILE = "~/.config/google-chrome"
PREFERENCES = f"{PROFILE}/Default/Preferences"
LOCAL_STATE = f"{PROFILE}/Local State"
BOOKMARKS = f"{PROFILE}/Default/Bookmarks"
FONT_DEFAULTS = {"default_fixed_font_size": 13, "default_font_size": 16, "minimum_font_size": 13}
_SPEC_DEFAULTS = {"type", "path", "dest", "multi", "gives", "command", "shell", "rules"}


def allowed(*keys: str) -> Callable[[dict[str, Any]], list[str]]:
    """A getter check hook: report spec fields the getter does not read (set, non-default ones)."""
    def check(spec: dict[str, Any]) -> list[str]:
        extra = [k for k, v in spec.items() if k not in keys and k not in _SPEC_DEFAULTS]
        extra += [k for k in ("path", "dest", "command", "rules") if k not in keys and spec.get(k) is not None]
        return [f"unknown option {k!r}" for k in extra]
    return check


async def read_json(guest: Guest, ctx: TaskContext, path: str) -> Any:
    """The guest file parsed as JSON (in a worker thread); ValueError if missing or not JSON."""
    data = await guest.download(ctx.guest_path(path))
    if data is None:
        raise ValueError(f"{path} does not exist in the guest")
    return await anyio.to_thread.run_sync(orjson.loads, data, limiter=settings_of(ctx.run).cpu)


async def _preferences(guest: Guest, ctx: TaskContext) -> dict[str, Any] | None:
    try:
        data = await read_json(guest, ctx, PREFERENCES)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def _local_state(guest: Guest, ctx: TaskContext) -> dict[str, Any] | None:
    try:
        data = await read_json(guest, ctx, LOCAL_STATE)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _flag(value: Any) -> str:
    return "true" if value else "false"


# --- Preferences ---------------------------------------------------------------------------------


@getter("default_search_engine", check=allowed())
async def default_search_engine(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """The default search engine's short name (Preferences); "Google" when unset or unreadable."""
    prefs = await _preferences(guest, ctx) or {}
    data = prefs.get("default_search_provider_data", {}).get("template_url_data", {})
    return data.get("short_name", "Google")


@getter("profile_name", check=allowed())
async def profile_name(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """Preferences profile.name (None when unset or unreadable)."""
    prefs = await _preferences(guest, ctx) or {}
    return prefs.get("profile", {}).get("name")


@getter("chrome_font_size", check=allowed())
async def chrome_font_size(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, Any]:
    """Preferences webkit.webprefs (font sizes), Chrome's defaults when unset."""
    prefs = await _preferences(guest, ctx)
    if prefs is None:
        return {"default_fixed_font_size": 13, "default_font_size": 16}  # upstream's error value
    return prefs.get("webkit", {}).get("webprefs", dict(FONT_DEFAULTS))


@getter("enable_do_not_track", check=allowed())
async def enable_do_not_track(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """"true" / "false": Preferences enable_do_not_track."""
    prefs = await _preferences(guest, ctx) or {}
    return _flag(prefs.get("enable_do_not_track"))


@getter("enable_enhanced_safety_browsing", check=allowed())
async def enable_enhanced_safety_browsing(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """"true" / "false": Preferences safebrowsing.enhanced ("Google" when unreadable, as upstream)."""
    prefs = await _preferences(guest, ctx)
    if prefs is None:
        return "Google"
    return _flag(prefs.get("safebrowsing", {}).get("enhanced"))


@getter("enable_safe_browsing", check=allowed())
async def enable_safe_browsing(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """"true" when Preferences safebrowsing.enhanced or safebrowsing.enabled is set, else "false"."""
    prefs = await _preferences(guest, ctx) or {}
    safe = prefs.get("safebrowsing", {})
    return _flag(safe.get("enhanced") or safe.get("enabled"))


@getter("new_startup_page", check=allowed())
async def new_startup_page(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """"true" when Chrome opens the New Tab page on start (no `session` key, or restore_on_startup 5)."""
    prefs = await _preferences(guest, ctx)
    if prefs is None:
        return "Google"
    if "session" not in prefs:
        return "true"
    return _flag(prefs.get("session", {}).get("restore_on_startup") == 5)


@getter("data_delete_automacally", check=allowed())
async def data_delete_automacally(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """"true" when Preferences profile.default_content_setting_values exists (upstream's spelling)."""
    prefs = await _preferences(guest, ctx)
    if prefs is None or "profile" not in prefs:
        return "Google"
    return _flag(prefs["profile"].get("default_content_setting_values") is not None)


def _extension_field(prefs: dict[str, Any] | None, pick: Callable[[dict[str, Any]], Any]) -> Any:
    if prefs is None:
        return "Google"
    try:
        return [pick(entry) for entry in prefs.get("extensions", {}).get("settings", {}).values()]
    except (KeyError, TypeError):  # an entry without the field: upstream's except branch
        return "Google"


@getter("find_unpacked_extension_path", check=allowed())
async def find_unpacked_extension_path(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """The `path` of every extension in Preferences extensions.settings."""
    return _extension_field(await _preferences(guest, ctx), lambda e: e["path"])


@getter("find_installed_extension_name", check=allowed())
async def find_installed_extension_name(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """The manifest name of every extension in Preferences extensions.settings."""
    return _extension_field(await _preferences(guest, ctx), lambda e: e["manifest"]["name"])


# --- Local State, Bookmarks ----------------------------------------------------------------------


@getter("enabled_experiments", check=allowed())
async def enabled_experiments(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> list[str]:
    """chrome://flags entries enabled in Local State (browser.enabled_labs_experiments)."""
    state = await _local_state(guest, ctx) or {}
    return state.get("browser", {}).get("enabled_labs_experiments", [])


@getter("chrome_language", check=allowed())
async def chrome_language(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """Chrome's UI language (Local State intl.app_locale), "en-US" when unset."""
    state = await _local_state(guest, ctx) or {}
    return state.get("intl", {}).get("app_locale", "en-US")


@getter("bookmarks", check=allowed())
async def bookmarks(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """The Bookmarks file's `roots` (bookmark_bar, other, synced); [] when there is no file."""
    data = await guest.download(ctx.guest_path(BOOKMARKS))
    if not data:
        return []
    parsed = await anyio.to_thread.run_sync(orjson.loads, data, limiter=settings_of(ctx.run).cpu)
    return parsed.get("roots", {})


# --- sqlite: Cookies, History --------------------------------------------------------------------


def _query(path: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def _sqlite_rows(guest: Guest, ctx: TaskContext, relative: str, dest: str, sql: str) -> list[tuple[Any, ...]] | None:
    local = await fetch_to_work(guest, ctx, relative, dest)
    if local is None:
        return None
    try:
        return await anyio.to_thread.run_sync(_query, local, sql, limiter=settings_of(ctx.run).cpu)
    except sqlite3.Error:
        return None  # not a database Chrome wrote: upstream returns None too


@getter("cookie_data", check=allowed("dest"))
async def cookie_data(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> list[tuple[Any, ...]] | None:
    """Every row of the Cookies database's `cookies` table (column 1 is host_key); saved as `dest`."""
    return await _sqlite_rows(guest, ctx, f"{PROFILE}/Default/Cookies", str(spec.dest or "Cookies"),
                              "SELECT * FROM cookies")


@getter("history", check=allowed("dest"))
async def history(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> list[tuple[Any, ...]] | None:
    """(url, title, last_visit_time) of every row of the History database's `urls`; saved as `dest`."""
    return await _sqlite_rows(guest, ctx, f"{PROFILE}/Default/History", str(spec.dest or "History"),
                              "SELECT url, title, last_visit_time FROM urls")


# --- files in the guest --------------------------------------------------------------------------

# Runs in the guest: upstream listed this folder on the host by mistake.
_LIST_MANIFESTS = r"""
import glob, json, os
found = []
for path in sorted(glob.glob(os.path.expanduser('~/.config/google-chrome/Default/Extensions/*/*/manifest.json'))):
    try:
        with open(path, encoding='utf-8') as f:
            found.append(json.load(f))
    except (OSError, ValueError):
        pass
print(json.dumps(found))
"""


@getter("extensions_installed_from_shop", check=allowed())
async def extensions_installed_from_shop(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> list[Any] | None:
    """The manifest.json of every extension installed from the Web Store (Default/Extensions/<id>/<version>)."""
    result = await guest.execute(["python3", "-c", _LIST_MANIFESTS], timeout=ctx.run.command_timeout)
    if not result.ok:
        return None
    return await anyio.to_thread.run_sync(json.loads, result.output, limiter=settings_of(ctx.run).cpu)


@getter("shortcuts_on_desktop", check=allowed())
async def shortcuts_on_desktop(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, str]:
    """{file name: text} of every `.desktop` file on the guest's desktop."""
    desktop = await guest.desktop_path()
    tree = await guest.list_directory(desktop) or {}
    if "directory_tree" in tree:
        tree = tree["directory_tree"]
    out: dict[str, str] = {}
    for entry in tree.get("children") or []:
        name = entry.get("name", "")
        if name.endswith(".desktop"):
            data = await guest.download(posixpath.join(desktop, name))
            if data is not None:
                out[name] = data.decode("utf-8", errors="replace")
    return out
