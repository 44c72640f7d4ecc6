"""The local server's image settings: registries, plain HTTP, the default image."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pydantic import BaseModel

#: Environment variables that set the options a caller leaves out (the plugin starts the
#: server without options, so these are how a test run configures it).
ENV_DEFAULT_REGISTRY = "PYTEST_DAYTONA_LOCAL_DEFAULT_REGISTRY"
ENV_INSECURE_REGISTRIES = "PYTEST_DAYTONA_LOCAL_INSECURE_REGISTRIES"
ENV_DEFAULT_IMAGE = "PYTEST_DAYTONA_LOCAL_DEFAULT_IMAGE"


class ImageOptions(BaseModel):
    """Where short image names resolve, which registries may use plain HTTP, and the image of
    sandboxes created with neither image nor snapshot (None: this machine's userland)."""

    default_registry: str | None = None
    insecure_registries: tuple[str, ...] = ()
    default_image: str | None = None

    @classmethod
    def resolve(
        cls,
        default_registry: str | None,
        insecure_registries: Sequence[str] | None,
        default_image: str | None,
    ) -> ImageOptions:
        """Arguments given win; the environment variables fill in the rest."""
        if insecure_registries is None:
            raw = os.environ.get(ENV_INSECURE_REGISTRIES, "")
            insecure_registries = [r.strip() for r in raw.split(",") if r.strip()]
        return cls(
            default_registry=default_registry or os.environ.get(ENV_DEFAULT_REGISTRY) or None,
            insecure_registries=tuple(insecure_registries),
            default_image=default_image or os.environ.get(ENV_DEFAULT_IMAGE) or None,
        )

    def notice(self, supported: bool) -> str:
        """What sandboxes with neither image nor snapshot run in, and whether images can."""
        if self.default_image:
            default = f"sandboxes with neither image nor snapshot run in {self.default_image}"
        else:
            default = "sandboxes with neither image nor snapshot run on this machine's userland"
        images = "images run" if supported else "images cannot run here (no bubblewrap/overlayfs)"
        return f"pytest-daytona local server: {default}; {images}"
