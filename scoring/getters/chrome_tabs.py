"""Chrome getters that ask the running browser over DevTools: open_tabs_info, active_tab_info,
page_info, pdf_from_url, info_from_website, chrome_appearance_mode_ui,
gotoRecreationPage_and_get_html_content.

As upstream, a getter that cannot reach DevTools relaunches `google-chrome
--remote-debugging-port=1337` once and tries again (active_tab_info does not: it gives None).
A browser that still does not answer fails the getter with the reason (the metric scores 0);
it never hangs: every wait has a deadline. Tabs a getter opens for itself are closed afterwards
(upstream leaves them open).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson

from benchmarks.chrome_browser import chrome_devtools
from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from harness.base.errors import TaskError
from scoring.badinput import NothingFound
from scoring.getters.chrome_profile import PREFERENCES, allowed, read_json
from scoring.getters.chrome_url import URL_KEYS, active_url
from scoring.registry import getter
from vm.devtools import Browser, DevToolsError, Page
from vm.types import Guest

log = logging.getLogger("scoring.chrome")

CONNECT_TIMEOUT_S = 30.0
PAGE_TIMEOUT_S = 60.0
TAB_IDLE_TIMEOUT_S = 30.0


class BrowserUnavailable(NothingFound):
    """Chrome's DevTools failed for a getter (the evaluator scores the metric 0 with this reason)."""


Getter = Callable[[Guest, GetterSpec, TaskContext], Awaitable[Any]]


def devtools_failures_score_zero(fn: Getter) -> Getter:
    """DevToolsError is a HarnessError the evaluator would re-raise; make it this getter's failure."""
    @functools.wraps(fn)
    async def wrapper(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
        try:
            return await fn(guest, spec, ctx)
        except DevToolsError as e:
            raise BrowserUnavailable(str(e)) from e
    return wrapper


def _extra(spec: GetterSpec) -> dict[str, Any]:
    return dict(spec.model_extra or {})


async def _snapshot(page: Page, title: str | None = None) -> dict[str, Any]:
    return {"title": title if title is not None else await page.title(), "url": page.url,
            "content": await page.content()}


async def _close_quietly(browser: Browser, page: Page) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
        try:
            await browser.close_page(page.target_id)
        except DevToolsError as e:
            log.debug("closing helper tab: %s", e)


# --- tabs ----------------------------------------------------------------------------------------


async def _tab_info(browser: Browser, target_id: str, url: str) -> dict[str, str]:
    try:
        page = await browser.attach(target_id, timeout=TAB_IDLE_TIMEOUT_S)
    except DevToolsError:
        return {"title": "Error encountered", "url": url}
    try:
        await page.wait_for_load("networkidle", timeout=TAB_IDLE_TIMEOUT_S)
    except DevToolsError as e:
        if "within" in str(e):  # a deadline, not a dead tab
            return {"title": "Load timeout", "url": page.url or url}
        return {"title": "Error encountered", "url": page.url or url}
    try:
        return {"title": await page.title(), "url": page.url or url}
    except DevToolsError:
        return {"title": "Error encountered", "url": page.url or url}


@getter("open_tabs_info", check=allowed())
@devtools_failures_score_zero
async def open_tabs_info(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> list[dict[str, str]]:
    """{title, url} of every open tab in opening order, each after network idle (30 s; a tab that
    does not settle gives title "Load timeout")."""
    async with chrome_devtools(guest, ctx, timeout=CONNECT_TIMEOUT_S, relaunch=True) as browser:
        tabs = await browser.pages()
        infos: list[dict[str, str]] = [{} for _ in tabs]

        async def one(i: int) -> None:
            infos[i] = await _tab_info(browser, tabs[i].target_id, tabs[i].url)

        async with anyio.create_task_group() as tg:  # tabs settle in parallel, not 30 s each in turn
            for i in range(len(tabs)):
                tg.start_soon(one, i)
        return infos


@getter("active_tab_info", check=allowed(*URL_KEYS))
async def active_tab_info(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, Any] | None:
    """{title, url, content} of the active tab's URL (from the address bar), loaded again in a new tab."""
    url = await active_url(guest, spec)
    if url is None:
        return None
    try:
        async with chrome_devtools(guest, ctx, timeout=CONNECT_TIMEOUT_S) as browser:
            page = await browser.new_page("about:blank", wait="none")
            try:
                try:
                    await page.goto(url, wait="load", timeout=PAGE_TIMEOUT_S)
                except DevToolsError as e:
                    if "did not load within" not in str(e):
                        log.warning("active_tab_info: %s", e)
                        return None
                    return await _snapshot(page, "Load timeout")
                return await _snapshot(page)
            finally:
                await _close_quietly(browser, page)
    except DevToolsError as e:
        log.warning("active_tab_info: %s", e)  # upstream gives None when DevTools fails
        return None


def _needs(*keys: str) -> Callable[[dict[str, Any]], list[str]]:
    check_allowed = allowed(*keys)

    def check(spec: dict[str, Any]) -> list[str]:
        return [f"{k} is required" for k in keys if not spec.get(k)] + check_allowed(spec)
    return check


@getter("page_info", check=_needs("url"))
@devtools_failures_score_zero
async def page_info(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, Any]:
    """{title, url, content} of `url` opened in a new tab (network idle, 60 s)."""
    url = str(_extra(spec)["url"])
    async with chrome_devtools(guest, ctx, timeout=CONNECT_TIMEOUT_S, relaunch=True) as browser:
        page = await browser.new_page("about:blank", wait="none")
        try:
            try:
                await page.goto(url, wait="networkidle", timeout=PAGE_TIMEOUT_S)
            except DevToolsError as e:
                if "within" not in str(e):
                    raise
                return await _snapshot(page, "Load timeout")
            return await _snapshot(page)
        finally:
            await _close_quietly(browser, page)


@getter("pdf_from_url", check=_needs("path", "dest"))
@devtools_failures_score_zero
async def pdf_from_url(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """`path` (a URL) printed to PDF by Chrome, saved as `dest` in the task's cache folder."""
    target = ctx.work_path(str(spec.dest))
    async with chrome_devtools(guest, ctx, timeout=CONNECT_TIMEOUT_S, relaunch=True) as browser:
        page = await browser.new_page("about:blank", wait="none")
        try:
            await page.goto(str(spec.path), wait="networkidle", timeout=PAGE_TIMEOUT_S)
            data = await page.pdf(timeout=PAGE_TIMEOUT_S)
        finally:
            await _close_quietly(browser, page)
    await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
    await anyio.Path(target).write_bytes(data)
    return str(target)


# --- info_from_website -----------------------------------------------------------------------------

# Waits up to 10 s for a CSS selector to match (Playwright's wait_for_selector, state attached).
_FIND = """(async (sel) => {
  const end = Date.now() + 10000;
  for (;;) {
    const el = document.querySelector(sel);
    if (el) return el;
    if (Date.now() > end) throw new Error('no element matches ' + sel + ' within 10 s');
    await new Promise(r => setTimeout(r, 100));
  }
})"""


async def _read(page: Page, selector: str, attribute: str | None) -> Any:
    what = f"el.getAttribute({orjson.dumps(attribute).decode()})" if attribute else "el.innerText"
    return await page.evaluate(f"{_FIND}({orjson.dumps(selector).decode()}).then(el => {what})", timeout=15.0)


async def _click(page: Page, selector: str) -> None:
    await page.evaluate(f"{_FIND}({orjson.dumps(selector).decode()}).then(el => {{ el.click(); return true; }})",
                        timeout=15.0)
    await anyio.sleep(0.2)  # let a navigation the click started begin before waiting for its load
    await page.wait_for_load("load", timeout=PAGE_TIMEOUT_S)


async def _website_infos(page: Page, url: str, infos: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for info in infos:
        if page.url != url:
            await page.goto(url, wait="load", timeout=PAGE_TIMEOUT_S)
        action = info.get("action", "inner_text")
        selectors = info["selector"]
        attribute = info.get("attribute") if action in ("attribute", "click_and_attribute") else None
        if action in ("inner_text", "attribute"):
            out.append(await _read(page, selectors, attribute))
        elif action in ("click_and_inner_text", "click_and_attribute"):
            for sel in selectors[:-1]:
                await _click(page, sel)
            out.append(await _read(page, selectors[-1], attribute))
        else:
            raise TaskError(f"info_from_website: action {action!r} is not supported")
    return out


def _check_infos(spec: dict[str, Any]) -> list[str]:
    problems = _needs("url", "infos")(spec)
    known = ("inner_text", "attribute", "click_and_inner_text", "click_and_attribute")
    for info in spec.get("infos") or []:
        if isinstance(info, dict) and info.get("action", "inner_text") not in known:
            problems.append(f"unknown action {info.get('action')!r}")
    return [p for p in problems if p != "unknown option 'backups'"]


@getter("info_from_website", check=_check_infos)
async def info_from_website(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """Texts/attributes read from `url` per `infos` (inner_text, attribute, click_and_*); on any
    failure `backups`, as upstream."""
    extra = _extra(spec)
    url = str(extra["url"])
    try:
        async with chrome_devtools(guest, ctx, timeout=CONNECT_TIMEOUT_S, relaunch=True) as browser:
            page = await browser.new_page("about:blank", wait="none")
            try:
                await page.goto(url, wait="load", timeout=PAGE_TIMEOUT_S)
                return await _website_infos(page, url, list(extra.get("infos") or []))
            finally:
                await _close_quietly(browser, page)
    except (DevToolsError, ValueError, KeyError, TypeError) as e:
        log.warning("info_from_website: %s; using backups", e)
        return extra.get("backups")


# --- appearance -------------------------------------------------------------------------------------

_COLOR_SCHEMES = {0: "system", 1: "light", 2: "dark"}
# The settings page's own pref API: the live value, even before Chrome writes Preferences.
_READ_SCHEME = """new Promise((resolve) => {
  const api = globalThis.chrome && chrome.settingsPrivate;
  if (!api) { resolve(null); return; }
  api.getPref('browser.theme.color_scheme2', (p) => {
    if (p && p.value !== undefined) { resolve(p.value); return; }
    api.getPref('browser.theme.color_scheme', (q) => resolve(q ? q.value : null));
  });
})"""


def scheme_from_preferences(prefs: dict[str, Any]) -> str:
    """"light" / "dark" / "system" from Preferences browser.theme.color_scheme2 (or color_scheme)."""
    theme = prefs.get("browser", {}).get("theme", {})
    raw = theme.get("color_scheme2", theme.get("color_scheme"))
    if prefs.get("extensions", {}).get("theme", {}).get("system_theme") in (0, "0", False):
        return "light"
    return _COLOR_SCHEMES.get(raw if isinstance(raw, int) else -1, "system")


@getter("chrome_appearance_mode_ui", check=allowed())
async def chrome_appearance_mode_ui(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str:
    """Chrome's appearance mode ("light", "dark" or "system") from chrome://settings/appearance,
    else from Preferences."""
    try:
        async with chrome_devtools(guest, ctx, timeout=CONNECT_TIMEOUT_S) as browser:
            page = await browser.new_page("about:blank", wait="none")
            try:
                await page.goto("chrome://settings/appearance", wait="load", timeout=30.0)
                value = await page.evaluate(_READ_SCHEME, timeout=10.0)
            finally:
                await _close_quietly(browser, page)
        if isinstance(value, int) and value in _COLOR_SCHEMES:
            return _COLOR_SCHEMES[value]
    except DevToolsError as e:
        log.info("chrome_appearance_mode_ui: settings page unavailable (%s); reading Preferences", e)
    try:
        prefs = await read_json(guest, ctx, PREFERENCES)
    except ValueError:
        return "system"
    return scheme_from_preferences(prefs if isinstance(prefs, dict) else {})


# --- live-site scripts ------------------------------------------------------------------------------


def _recreation_check(spec: dict[str, Any]) -> list[str]:
    return ["scripted flow on the live www.recreation.gov site is not implemented"]


@getter("gotoRecreationPage_and_get_html_content", check=_recreation_check)
async def gotoRecreationPage_and_get_html_content(
        guest: Guest, spec: GetterSpec, ctx: TaskContext) -> Any:
    """Not implemented: upstream scripts a search on the live www.recreation.gov (needs the site)."""
    raise NotImplementedError("gotoRecreationPage_and_get_html_content drives the live www.recreation.gov site")
