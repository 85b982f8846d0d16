"""The desktop image: Dockerfile, entrypoint and build (`python -m harness vm build`).

Public API: `image_tag() -> str` (pure) and `await ensure_image(...) -> str` (builds if missing).
"""

from vm.image.build import ensure_image, image_tag

__all__ = ["ensure_image", "image_tag"]
