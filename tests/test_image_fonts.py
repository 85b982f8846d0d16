"""The Ubuntu font for the osworld desktop: taken from an npm tarball only when its sha512 is the pinned one."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile

import pytest

from harness.base.errors import SandboxError
from vm.image import fonts


def _npm_tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_the_original_ttfs_and_licence_go_into_the_context_and_nothing_else():
    tgz = _npm_tarball({
        "package/fonts/original-pack/Ubuntu-R.ttf": b"regular",
        "package/fonts/original-pack/UbuntuMono-R.ttf": b"mono",
        "package/fonts/original-pack/LICENCE.txt": b"UFL",
        "package/fonts/ubuntu-regular-webfont.ttf": b"subset",
        "package/fonts/original-pack/README.txt": b"readme",
    })
    got = fonts.extract_fonts(tgz, _integrity(tgz))
    assert got == {"fonts/ubuntu/Ubuntu-R.ttf": b"regular", "fonts/ubuntu/UbuntuMono-R.ttf": b"mono",
                   "fonts/ubuntu/LICENCE.txt": b"UFL"}


def test_a_tarball_that_is_not_the_pinned_one_is_refused():
    tgz = _npm_tarball({"package/fonts/original-pack/Ubuntu-R.ttf": b"regular"})
    with pytest.raises(SandboxError, match="integrity"):
        fonts.extract_fonts(tgz, _integrity(b"something else"))


def test_the_pin_file_names_a_package_and_a_sha512(tmp_path):
    spec, integrity = fonts.font_pin()
    assert spec.startswith("ubuntu-fontface@") and integrity.startswith("sha512-")
    bad = tmp_path / "pin"
    bad.write_text("# comment\nubuntu-fontface\n")
    with pytest.raises(SandboxError, match="expected one line"):
        fonts.font_pin(bad)
