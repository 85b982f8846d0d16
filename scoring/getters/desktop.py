"""Getters that ask the guest about its desktop: accessibility tree, screen, windows, folders."""

from __future__ import annotations

from typing import Any

from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from scoring.registry import getter
from vm.types import Guest


@getter("accessibility_tree")
async def accessibility_tree(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """The guest's accessibility tree (OSWorld XML)."""
    return await guest.accessibility()


@getter("vm_screen_size")
async def vm_screen_size(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, int]:
    """`{"width", "height"}` of the guest screen."""
    width, height = await guest.screen_size()
    return {"width": width, "height": height}


@getter("vm_window_size", check=lambda s: [] if s.get("app_class_name") else ["app_class_name is required"])
async def vm_window_size(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, int] | None:
    """`{"width", "height"}` of the window of `app_class_name` (None if there is none)."""
    size = await guest.window_size(str((spec.model_extra or {})["app_class_name"]))
    return None if size is None else {"width": size[0], "height": size[1]}


@getter("list_directory", check=lambda s: [] if isinstance(s.get("path"), str) else ["path must be a string"])
async def list_directory(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> dict[str, Any] | None:
    """`{type, name, children}` tree of a guest folder (None if it does not exist)."""
    tree = await guest.list_directory(ctx.guest_path(str(spec.path)))
    if isinstance(tree, dict) and "directory_tree" in tree:  # a guest that returns the raw payload
        tree = tree["directory_tree"]
    return tree
