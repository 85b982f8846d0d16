"""Getters that run a command in the guest, or read its terminal."""

from __future__ import annotations

from benchmarks.context import TaskContext
from benchmarks.schema import GetterSpec
from scoring.registry import getter
from vm.types import Guest


def _check_command(spec: dict) -> list[str]:
    return [] if spec.get("command") else ["command is required"]


@getter("vm_command_line", check=_check_command)
async def vm_command_line(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """stdout of a command run in the guest (None if the guest could not run it)."""
    assert spec.command is not None
    result = await guest.execute(spec.command, shell=spec.shell, timeout=ctx.run.command_timeout)
    return result.output if result.status == "success" else None


@getter("vm_command_error", check=_check_command)
async def vm_command_error(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """stderr of a command run in the guest (None if the guest could not run it)."""
    assert spec.command is not None
    result = await guest.execute(spec.command, shell=spec.shell, timeout=ctx.run.command_timeout)
    return result.error if result.status == "success" else None


@getter("vm_terminal_output")
async def vm_terminal_output(guest: Guest, spec: GetterSpec, ctx: TaskContext) -> str | None:
    """Text of the guest's open terminal window."""
    return await guest.terminal()
