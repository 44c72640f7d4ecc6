"""The one error of pulling an image: the image, the cause, and the API status to answer."""

from __future__ import annotations


class ImageError(Exception):
    """An image that cannot be pulled or unpacked; ``str()`` names the image and the cause."""

    def __init__(self, status: int, image: str, cause: str) -> None:
        super().__init__(f"image {image}: {cause}")
        self.status = status
        self.image = image
        self.cause = cause
