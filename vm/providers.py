"""Sandbox providers by name: `make(name, settings, run_id)` is the one way a run gets one.

A provider is one module with a class (or function) called as `factory(settings, run_id)` that
returns a `vm.types.Provider`, plus one registration: a line in `BUILTIN` below for ours,
`register(name, factory)` for a plugin's, or no registration at all when the run names it as
`MODULE:ATTR` (`--provider mypkg.sandboxes:MyProvider`), imported on first use in every process
that makes one, cluster workers included (the module must be importable there, as a pip-installed
package is). The config's and the CLI's choices are `names()`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.base.errors import ConfigError
from vm.types import Provider


@dataclass(frozen=True)
class SandboxSettings:
    """What every provider is made from (harness/config.py `sandbox_settings` fills it from a run's
    config); a provider takes what applies to it."""

    screen_width: int = 1920
    screen_height: int = 1080
    network: str = "none"  # "none" | "bridge": sandboxes reach no network unless a task needs it
    max_file_bytes: int = 1 << 30  # largest file taken from a sandbox (streamed to disk)
    max_message_bytes: int = 128 << 20  # largest response held in memory
    latency_s: float = 0.0  # simulated providers: latency of each start/observe/execute
    image: str | None = None  # image providers: this tag instead of the current build's
    desktop: str = "osworld"  # the desktop image's session: "osworld" (GNOME Shell) or "light" (openbox)
    warm_start: bool | None = None  # Docker: starts are forks of one boot snapshot (vm/docker_warm.py); None: the desktop's default

    @property
    def screen_size(self) -> tuple[int, int]:
        return (self.screen_width, self.screen_height)


ProviderFactory = Callable[[SandboxSettings, str], Provider]


@dataclass(frozen=True)
class ProviderKind:
    factory: ProviderFactory
    # Runs the desktop image: the run builds it (cluster workers check it against the head's)
    # before the first start. A factory says so with a `needs_image = True` attribute.
    needs_image: bool = False


# Ours, by import path so naming one does not import the others (Docker's client, say).
BUILTIN: dict[str, str] = {
    "docker": "vm.docker:DockerProvider.from_settings",
    "sim": "vm.sim:SimProvider.from_settings",
}
_registered: dict[str, ProviderKind] = {}


def register(name: str, factory: ProviderFactory, *, needs_image: bool | None = None) -> None:
    """Make `name` a provider of this process (a plugin calls it when imported)."""
    if not name or ":" in name:
        raise ConfigError(f"provider name {name!r}: expected a word without ':'")
    _registered[name] = ProviderKind(factory, _needs_image(factory) if needs_image is None else needs_image)


def _declared(factory: object, attr: str) -> Any:
    """`attr` as a provider factory declares it: a class, a function, or a classmethod of a
    provider class (`Cls.from_settings`, whose class holds it); None if it does not."""
    return getattr(factory, attr, getattr(getattr(factory, "__self__", None), attr, None))


def _needs_image(factory: object) -> bool:
    return bool(_declared(factory, "needs_image"))


def names() -> list[str]:
    """Provider names a run may give (besides MODULE:ATTR)."""
    return sorted({*BUILTIN, *_registered})


def _import(path: str, what: str) -> ProviderFactory:
    module_name, _, attr = path.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"provider {what!r}: cannot import {path} ({e})") from e
    if not callable(obj):
        raise ConfigError(f"provider {what!r}: {path} is not callable (expected a class or function "
                          "called as factory(settings, run_id))")
    return obj


def kind(name: str) -> ProviderKind:
    """The registration of `name` (a registered name, a builtin, or MODULE:ATTR); ConfigError if none."""
    if name in _registered:
        return _registered[name]
    if name in BUILTIN or ":" in name:
        factory = _import(BUILTIN.get(name, name), name)
        return ProviderKind(factory, _needs_image(factory))
    raise ConfigError(f"provider {name!r}: expected one of {', '.join(names())} or MODULE:ATTR")


def check_name(name: str) -> str:
    """`name` if a run may give it; MODULE:ATTR is checked when the provider is made."""
    if name in _registered or name in BUILTIN or ":" in name:
        return name
    raise ConfigError(f"provider {name!r}: expected one of {', '.join(names())} or MODULE:ATTR")


def clock_regions(name: str, settings: SandboxSettings) -> tuple[tuple[float, float, float, float], ...]:
    """Regions of provider `name`'s screens that change with the wall clock alone (left, top,
    right, bottom as fractions of the screen): the response cache leaves them out of its keys so a
    re-run task replays. A factory (or its class) says so with `clock_regions(settings)`."""
    regions = _declared(kind(name).factory, "clock_regions")
    return tuple(regions(settings)) if callable(regions) else ()


def make(name: str, settings: SandboxSettings, run_id: str) -> Provider:
    """A new provider `name` for run `run_id` (not started: the pool starts its sandboxes)."""
    return kind(name).factory(settings, run_id)
