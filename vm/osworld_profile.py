"""Profile for OSWorld's own Docker image: `happysixd/osworld-docker` (QEMU running the Ubuntu qcow2).

Use it with the same provider and pool as our desktop image:

    settings = OSWorldSettings(qcow2_path="/data/Ubuntu.qcow2")
    async with DockerProvider(settings) as provider, SandboxPool(provider, capacity=2) as pool: ...

What it does, from OSWorld's Docker provider: the qcow2 is bind-mounted read-only at
/System.qcow2; env DISK_SIZE / RAM_SIZE / CPU_CORES (and KVM=N without /dev/kvm); cap NET_ADMIN;
/dev/kvm passed through; container ports 5000 (guest server), 9222 (Chrome DevTools), 8006 (VNC
web viewer) and 8080 (VLC) published on 127.0.0.1 only, on ports Docker picks (read back from the
container, so concurrent sandboxes never race for a port). Upstream's server has no
authentication and no /health, so the client talks to it in open mode over TCP and waits for
GET /screenshot = 200, as upstream does (300 s budget: the VM boots).

NOT TESTED HERE: this machine has no route to Docker Hub (the image cannot be pulled), no qcow2
(~10 GB download) and its engine runs with `--bridge=none` (published ports need a bridge). The
profile is configuration only; nothing in the test suite pretends to exercise it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.base.errors import SandboxError
from vm.client import GuestClient
from vm.types import MAX_FILE_BYTES, MAX_MESSAGE_BYTES

# container port -> name in SandboxInfo.extra["ports"]
OSWORLD_PORTS = {5000: "server", 9222: "chromium", 8006: "vnc", 8080: "vlc"}


class OSWorldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = "osworld"
    image: str = "happysixd/osworld-docker"
    qcow2_path: Path = Field(description="the OSWorld Ubuntu VM disk (Ubuntu.qcow2), mounted read-only")
    disk_size: str = "32G"
    ram_size: str = "4G"
    cpu_cores: int = Field(4, ge=1)
    kvm: bool = Field(True, description="pass /dev/kvm; False runs QEMU without acceleration (very slow)")
    network: str = Field("bridge", description="published ports need a bridge network")
    host_ip: str = Field("127.0.0.1", description="host address the ports are published on; keep it loopback")
    start_timeout_s: float = Field(300.0, gt=0, description="the VM boots: upstream waits up to 300 s")
    stop_timeout_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(60.0, gt=0)
    runtime_dir: Path | None = None
    max_file_bytes: int = Field(MAX_FILE_BYTES, ge=1)
    max_message_bytes: int = Field(MAX_MESSAGE_BYTES, ge=1)

    def resolve_image(self) -> str:
        return self.image

    def uses_token(self) -> bool:
        return False  # upstream's server has no authentication

    def container_config(self, spec: Any, image: str) -> dict[str, Any]:
        qcow2 = self.qcow2_path.expanduser().resolve()
        if not qcow2.is_file():
            raise SandboxError(f"qcow2_path {qcow2} does not exist: download OSWorld's Ubuntu.qcow2 first")
        env = [f"DISK_SIZE={self.disk_size}", f"RAM_SIZE={self.ram_size}", f"CPU_CORES={self.cpu_cores}"]
        host: dict[str, Any] = {
            "Binds": [f"{qcow2}:/System.qcow2:ro"],
            "CapAdd": ["NET_ADMIN"],
            "NetworkMode": self.network,
            "PortBindings": {f"{p}/tcp": [{"HostIp": self.host_ip, "HostPort": ""}] for p in OSWORLD_PORTS},
        }
        if self.kvm:
            host["Devices"] = [{"PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm", "CgroupPermissions": "rwm"}]
        else:
            env.append("KVM=N")
        return {
            "Image": image,
            "Env": env,
            "Labels": spec.labels,
            "ExposedPorts": {f"{p}/tcp": {} for p in OSWORLD_PORTS},
            "HostConfig": host,
        }

    def host_ports(self, inspect: dict[str, Any]) -> dict[str, int]:
        """Host port of each published service, read from `docker inspect`."""
        published = (inspect.get("NetworkSettings") or {}).get("Ports") or {}
        ports: dict[str, int] = {}
        for port, name in OSWORLD_PORTS.items():
            bindings = published.get(f"{port}/tcp") or []
            if bindings:
                ports[name] = int(bindings[0]["HostPort"])
        if "server" not in ports:
            raise SandboxError(f"{inspect.get('Name', '?')}: port 5000 was not published; is the network a bridge?")
        return ports

    def sandbox_extra(self, inspect: dict[str, Any]) -> dict[str, Any]:
        return {"ports": self.host_ports(inspect)}

    def ready_update(self) -> dict[str, Any] | None:
        return None  # the VM's resources are its own (CPU_CORES, RAM_SIZE)

    def max_starting(self) -> int | None:
        return None  # one VM boot per core

    def max_boots(self) -> int | None:
        return None  # every start is a boot: max_starting holds them

    def guest_client(self, spec: Any, inspect: dict[str, Any]) -> GuestClient:
        port = self.host_ports(inspect)["server"]
        return GuestClient(
            base_url=f"http://{self.host_ip}:{port}",
            token=None,
            name=spec.name,
            request_timeout=self.request_timeout_s,
            max_file_bytes=self.max_file_bytes,
            max_message_bytes=self.max_message_bytes,
            health_path="/screenshot",  # upstream has no /health; its clients poll /screenshot
        )
