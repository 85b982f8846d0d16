"""Before a node takes work: is its desktop image the head's build?

Images are tagged by the hash of their build context (`vm build`, vm/image/context.py), so the
head's tag names exactly the image its code expects. A node whose harness code hashes to the same
tag but lacks the image builds it (minutes; logged) and reports ready only after; a node whose
code hashes differently cannot build the head's image and refuses work with one line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from harness.base.errors import SandboxError


@dataclass(frozen=True)
class ImageDecision:
    action: str  # "ready" | "build" | "refuse"
    reason: str


def decide(head_tag: str, node_tag: str, present: bool) -> ImageDecision:
    if node_tag != head_tag:
        return ImageDecision("refuse", f"this node's harness builds {node_tag}, the head runs {head_tag}: "
                             "install the head's harness version on this node")
    if present:
        return ImageDecision("ready", f"image {head_tag} present")
    return ImageDecision("build", f"image {head_tag} missing on this node: building it")


async def check_image(head_tag: str, *, node_tag: Callable[[], str], exists: Callable[[str], Awaitable[bool]],
                      build: Callable[[], Awaitable[str]], log: Callable[[str], None]) -> ImageDecision:
    """Apply `decide`; build when needed. Raises SandboxError when this node cannot serve the run."""
    decision = decide(head_tag, node_tag(), await exists(head_tag))
    log(decision.reason)
    if decision.action == "refuse":
        raise SandboxError(decision.reason)
    if decision.action == "build":
        built = await build()
        if built != head_tag:
            raise SandboxError(f"built image {built}, expected the head's {head_tag}")
    return decision


async def docker_image_check(head_tag: str, log: Callable[[str], None]) -> ImageDecision:
    """`check_image` against this node's Docker engine and harness sources."""
    import aiodocker

    from vm.image import dockerapi
    from vm.image.build import ensure_image, image_tag

    async def exists(tag: str) -> bool:
        async with aiodocker.Docker() as docker:
            return bool(await dockerapi.image_exists(docker, tag))

    return await check_image(head_tag, node_tag=image_tag, exists=exists, build=lambda: ensure_image(log=log), log=log)
