"""OCI images for the local server: references, a registry client, a verified blob cache and
the unpacked root file systems sandboxes run in."""

from .errors import ImageError
from .store import ImageConfig, ImageStore, PulledImage

__all__ = ["ImageConfig", "ImageError", "ImageStore", "PulledImage"]
