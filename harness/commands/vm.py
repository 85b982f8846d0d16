"""`python -m harness vm {build,tag,gc}`: the desktop image and sandbox housekeeping."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("vm", help="desktop image and sandbox housekeeping")
    vm_sub = parser.add_subparsers(dest="vm_command", metavar="ACTION")

    build = vm_sub.add_parser(
        "build", help="build the desktop image if the sources changed (prints its tag, then its apps and versions)"
    )
    build.add_argument(
        "--debootstrap",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="base on a debootstrapped bookworm instead of debian:bookworm-slim from Docker Hub "
        "(default: automatic; CUA_DEBOOTSTRAP=1 forces it)",
    )
    build.add_argument(
        "--force", action="store_true", help="rebuild from scratch (no layer cache) even if the image exists"
    )
    build.set_defaults(func=_build)

    tag = vm_sub.add_parser("tag", help="print the image tag the current sources describe (no Docker)")
    tag.set_defaults(func=_tag)

    gc = vm_sub.add_parser("gc", help="remove sandbox containers left by earlier runs (and old images: --images)")
    gc.add_argument("--run-id", default=None, help="only this run's containers (default: every run's)")
    gc.add_argument("--stale-only", action="store_true",
                    help="keep containers whose harness process is still alive (safe beside live runs)")
    gc.add_argument("--images", action="store_true",
                    help="also remove desktop images built from other sources than the current ones "
                    "(old tags and untagged leftovers; images in use are kept)")
    gc.set_defaults(func=_gc)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _build(args: argparse.Namespace) -> int:
    from harness.base import aio
    from vm.image import ensure_image

    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True, highlight=False)

        async def main() -> str:
            with console.status("building the desktop image…") as status:

                def log(line: str) -> None:
                    console.print(line, markup=False)
                    status.update(line.strip()[:100])

                return await ensure_image(debootstrap=args.debootstrap, force=args.force, log=log)

    else:

        async def main() -> str:
            def log(line: str) -> None:
                print(line, file=sys.stderr, flush=True)

            return await ensure_image(debootstrap=args.debootstrap, force=args.force, log=log)

    tag = aio.run(main)
    print(tag)
    _print_manifest(tag)
    return 0


def _print_manifest(tag: str) -> None:
    from vm.image.manifest import format_manifest, image_manifest

    manifest = image_manifest(tag)
    if manifest is None:
        print(f"(no app manifest recorded for {tag})", file=sys.stderr)
        return
    for line in format_manifest(manifest):
        print(f"  {line}")


def _tag(args: argparse.Namespace) -> int:
    from vm.image import image_tag

    print(image_tag())
    return 0


def _gc(args: argparse.Namespace) -> int:
    from harness.base import aio
    from vm.docker import gc_containers  # written alongside the Docker provider

    async def gc() -> tuple[int, list[str] | None]:
        import aiodocker

        from vm.docker_fork import gc_snapshots

        removed = await gc_containers(args.run_id, stale_only=args.stale_only)
        async with aiodocker.Docker() as docker:
            snapshots = await gc_snapshots(docker, args.run_id, stale_only=args.stale_only)
        if snapshots:
            print(f"removed {snapshots} snapshot image(s) of forked sandboxes")
        if not args.images:
            return removed, None

        from vm.docker_gc import prune_images
        from vm.image import image_tag

        docker = aiodocker.Docker()
        try:
            return removed, await prune_images(image_tag(), docker=docker)
        finally:
            await docker.close()

    removed, images = aio.run(gc)
    scope = f"run {args.run_id}" if args.run_id else "all runs"
    if args.stale_only:
        scope += ", owners no longer running"
    print(f"removed {removed} sandbox container(s) ({scope})")
    if images is not None:
        print(f"removed {len(images)} old desktop image(s){': ' + ', '.join(images) if images else ''}")
    return 0
