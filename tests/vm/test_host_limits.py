"""The host's inotify budget is one for every sandbox: the provider warns once when its sandboxes
get within reach of it, and not at all when the limit is high (vm/host_limits.py)."""

from __future__ import annotations

import logging

import pytest

from vm.host_limits import RAISE_TO, InotifyBudget, shortfall


def budget(instances: int | None, watches: int | None = 192546) -> InotifyBudget:
    values = {"max_user_instances": instances, "max_user_watches": watches}
    return InotifyBudget(read=values.__getitem__)


def test_stock_limit_warns_once_as_osworld_sandboxes_add_up(caplog: pytest.LogCaptureFixture) -> None:
    b = budget(128)
    with caplog.at_level(logging.WARNING, logger="vm.host_limits"):
        quiet = [b.check(n, "osworld") for n in range(1, 5)]  # 4 x 16 = half of 128
        loud = [b.check(n, "osworld") for n in range(5, 40)]
    assert quiet == [None] * 4
    assert loud[0] is not None and loud[1:] == [None] * 34
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "fs.inotify.max_user_instances is 128" in warnings[0]
    assert "sudo sysctl -w fs.inotify.max_user_instances=8192" in warnings[0]


def test_a_limit_below_one_sandbox_warns_at_the_first_start() -> None:
    assert budget(16).check(1, "light") is not None


def test_raised_limits_never_warn(caplog: pytest.LogCaptureFixture) -> None:
    b = budget(RAISE_TO["max_user_instances"], RAISE_TO["max_user_watches"])
    with caplog.at_level(logging.WARNING, logger="vm.host_limits"):
        assert all(b.check(n, d) is None for n in range(1, 200) for d in ("osworld", "light"))
    assert not caplog.records


def test_old_kernels_watch_limit_is_named() -> None:
    why = shortfall({"max_user_instances": 8192, "max_user_watches": 8192}, 11, "osworld")
    assert why is not None and "fs.inotify.max_user_watches is 8192" in why
    assert "sysctl -w fs.inotify.max_user_watches=524288" in why


def test_other_images_and_unreadable_limits_are_left_alone() -> None:
    assert budget(1).check(100, None) is None  # not our desktop image (e.g. OSWorld's QEMU one)
    assert budget(None, None).check(100, "osworld") is None
