"""A tiny in-process Guest for UNIT tests of setup steps and evaluators (pure logic only).

It keeps files in a dict and answers commands from a handler; it is not a sandbox. End-to-end
behaviour against real sandboxes is covered by the docker-marked tests elsewhere.
"""

from __future__ import annotations

import pytest
from fake_guest import FakeGuest


def test_fake_guest_satisfies_the_guest_protocol() -> None:
    from vm.types import Guest

    assert isinstance(FakeGuest(), Guest)


@pytest.mark.parametrize("path", ["/home/user/a.txt"])
async def test_fake_guest_download_returns_none_for_missing_files(path: str) -> None:
    g = FakeGuest(files={path: b"x"})
    assert await g.download(path) == b"x"
    assert await g.download(path + ".missing") is None
