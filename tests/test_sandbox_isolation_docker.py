"""The sandbox cannot forge its own score: claims on real containers of the desktop image.

The agent's code runs as `user` (uid 1000), the uid every command the guest runs gets. From there
it must not learn the guest's token nor put a server of its own where the host looks for the
guest's socket; the guest must still act as `user` (files it writes, programs it starts).
With `--sandbox-network bridge` the sandboxes of a provider share a network with inter-container
traffic off.
"""

from __future__ import annotations

import aiodocker
import aiohttp
import pytest

from harness.base.errors import SandboxError
from vm.docker import LABEL_PROVIDER, LABEL_RUN, DockerProvider, DockerSandbox, DockerSettings, gc_containers

pytestmark = pytest.mark.docker

# Looks for the token everywhere `user` can read it: every process's environment and command
# line, and the files under the places a token file would sit. Prints what it could not read.
FIND_TOKEN = r"""
import glob, os, sys
token = sys.argv[1] + sys.argv[2]  # in two halves: our own command line must not match
found, denied = [], []
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/task/[0-9]*/environ") + \
        glob.glob("/proc/[0-9]*/cmdline"):
    try:
        with open(path, "rb") as f:
            if token.encode() in f.read():
                found.append(path)
    except PermissionError:
        denied.append(path)
    except OSError:
        pass
for top in ("/run", "/tmp", "/home", "/opt/guest", "/etc", "/var/tmp", "/dev/shm"):
    for root, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    if token.encode() in f.read(1 << 20):
                        found.append(path)
            except OSError:
                pass
print("FOUND", found)
print("DENIED", " ".join(denied))
"""


def _guest_process(ps: str) -> tuple[str, str]:
    """(pid, user) of the guest server in `ps -eo pid=,user=,args=` output."""
    for line in ps.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[2].strip() == "python3 -m guest":
            return parts[0], parts[1]
    raise AssertionError(f"no guest process in:\n{ps}")


async def test_commands_run_as_the_agents_user_and_files_they_get_are_the_users(desktop: DockerSandbox):
    who = await desktop.run(["id", "-un"])
    assert who.output.strip() == "user"
    await desktop.upload("~/Documents/isolation/setup.txt", b"from a setup step\n")
    owner = await desktop.run(["stat", "-c", "%U:%G %n", "/home/user/Documents/isolation",
                               "/home/user/Documents/isolation/setup.txt"])
    assert owner.output.split("\n")[:2] == ["user:user /home/user/Documents/isolation",
                                            "user:user /home/user/Documents/isolation/setup.txt"]
    # The guest writes with the user's rights, not root's: a root-only folder refuses the upload.
    with pytest.raises(SandboxError, match="permission denied"):
        await desktop.upload("/root/planted.txt", b"x")


async def test_the_agents_user_cannot_read_the_guest_token(desktop: DockerSandbox):
    token = desktop.spec.token
    assert token
    ps = await desktop.run(["ps", "-eo", "pid=,user=,args="])
    guest_pid, guest_user = _guest_process(ps.output)
    assert guest_user == "root"
    environ = await desktop.run(["cat", f"/proc/{guest_pid}/environ"])
    assert environ.returncode != 0 and "Permission denied" in environ.error
    assert token not in environ.output
    # The guest's AT-SPI thread has user's ids (user.py); its memory must stay closed all the same.
    await desktop.observe()
    threads = await desktop.run(["sh", "-c", f"grep -H ^Uid: /proc/{guest_pid}/task/*/status"])
    user_threads = [line.split("/")[4] for line in threads.output.splitlines() if line.split()[1] == "1000"]
    assert len(user_threads) == 1, threads.output
    mem = await desktop.run(["python3", "-c", f"open('/proc/{guest_pid}/task/{user_threads[0]}/mem', 'rb').read(1)"])
    assert mem.returncode != 0 and "PermissionError" in mem.error, mem
    search = await desktop.run(["python3", "-c", FIND_TOKEN, token[:8], token[8:]], timeout=60)
    assert search.returncode == 0, search.error
    assert "FOUND []" in search.output, search.output
    assert f"/proc/{guest_pid}/environ" in search.output.split("DENIED", 1)[1]


async def test_the_agents_user_cannot_replace_remove_or_add_to_the_socket_folder(desktop: DockerSandbox):
    attempts = {
        "rename": ["mv", "/run/guest/guest.sock", "/run/guest/moved.sock"],
        "remove": ["rm", "-f", "/run/guest/guest.sock"],
        "create": ["touch", "/run/guest/planted"],
        "bind": ["python3", "-c", "import socket; s = socket.socket(socket.AF_UNIX); s.bind('/run/guest/guest2.sock')"],
        "chmod": ["chmod", "777", "/run/guest"],
    }
    for what, argv in attempts.items():
        result = await desktop.run(argv)
        assert result.returncode != 0, f"{what} succeeded: {result.output} {result.error}"
    listing = await desktop.run(["ls", "-la", "/run/guest"])
    names = sorted(line.split()[-1] for line in listing.output.splitlines()[1:])
    assert names == [".", "..", "guest.sock"], listing.output
    folder = next(line for line in listing.output.splitlines() if line.endswith(" ."))
    assert folder.startswith("drwxr-xr-x"), folder
    assert await desktop.guest.health()


async def test_bridge_sandboxes_share_a_network_of_their_own_with_inter_container_traffic_off(
    desktop_image: str, test_run_id: str
):
    settings = DockerSettings(image=desktop_image, network="bridge", screen_width=640, screen_height=480)
    async with aiodocker.Docker() as docker:
        async with DockerProvider(settings, run_id=test_run_id) as provider:
            first, second = await provider.start(), await provider.start()
            infos = [await docker.containers.container(b.container_id).show() for b in (first, second)]
            modes = {info["HostConfig"]["NetworkMode"] for info in infos}
            assert modes == {f"cua-net-{provider.provider_id}"}
            net = await (await docker.networks.get(modes.pop())).show()
            assert net["Options"]["com.docker.network.bridge.enable_icc"] == "false"
            assert net["Labels"][LABEL_PROVIDER] == provider.provider_id
            assert len(net["Containers"]) == 2
        left = await docker.networks.list(filters={"label": [f"{LABEL_PROVIDER}={provider.provider_id}"]})
        assert left == []


async def test_gc_removes_the_network_of_a_run_whose_provider_never_closed(desktop_image: str, test_run_id: str):
    run_id = f"{test_run_id}-netgc"
    settings = DockerSettings(image=desktop_image, network="bridge", screen_width=640, screen_height=480)
    provider = DockerProvider(settings, run_id=run_id)
    async with aiodocker.Docker() as docker:
        try:
            await provider.start()
            assert len(await docker.networks.list(filters={"label": [f"{LABEL_RUN}={run_id}"]})) == 1
            assert await gc_containers(run_id) == 1  # as `vm gc --run-id` after a crash
            assert await docker.networks.list(filters={"label": [f"{LABEL_RUN}={run_id}"]}) == []
        finally:
            await provider.aclose()


# A server that answers every request with an empty JSON object, at the guest's socket path.
FAKE_GUEST = r"""
import os, socket
path = "/run/guest/guest.sock"
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen()
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    c.close()
"""


async def test_a_socket_put_in_the_guests_place_with_sudo_gets_no_host_request(docker_provider: DockerProvider):
    # OSWorld's `user` has sudo (password `password`): root in the sandbox can move the socket away
    # and serve its own. The host keeps talking to the socket file the ready guest made.
    box = await docker_provider.start()
    try:
        await box.upload("/tmp/fake_guest.py", FAKE_GUEST.encode())
        swap = await box.run(
            "echo password | sudo -S sh -c 'mv /run/guest/guest.sock /run/guest/real.sock "
            "&& (nohup python3 /tmp/fake_guest.py >/dev/null 2>&1 &)' && sleep 1 && ls /run/guest",
            shell=True,
        )
        assert swap.returncode == 0 and swap.output.split() == ["guest.sock", "real.sock"], swap
        assert box.guest.socket_path is not None
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=box.guest.socket_path)) as raw:
            async with raw.get("http://localhost/health") as resp:
                assert await resp.read() == b"{}"  # a new connection by name reaches the fake
        # New connections of the sandbox's own client (its pooled ones dropped) reach the guest.
        if box.guest._session is not None:
            await box.guest._session.close()
            box.guest._session = None
        who = await box.run(["id", "-un"])
        assert (who.returncode, who.output.strip()) == (0, "user")
    finally:
        await docker_provider.stop(box)
