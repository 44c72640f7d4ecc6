"""Durable storage of sandbox records and their directories under the server's data dir.

Layout: ``<data_dir>/sandboxes/<id>/state.json`` (the record), ``home/`` (the sandbox's home
and work dir) and ``tmp/`` (its ``/tmp``); ``<data_dir>/volumes/<id>/`` (a volume's files),
``<data_dir>/objects/`` (uploaded build contexts). Records are written to a temporary file
and renamed into place, so a crash mid-write never leaves a corrupt ``state.json``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from ..._files import atomic_write
from .records import SETTLED_AFTER_RESTART, SandboxRecord, State

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


class Store:
    """In-memory index of sandbox records, mirrored to disk on every change."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "sandboxes"
        self.root.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, SandboxRecord] = {}
        self._load()

    def _load(self) -> None:
        for state_file in sorted(self.root.glob(f"*/{STATE_FILE}")):
            try:
                record = SandboxRecord.model_validate_json(state_file.read_bytes())
            except (OSError, ValidationError) as exc:
                log.warning("skipping unreadable sandbox record %s: %s", state_file, exc)
                continue
            settled = SETTLED_AFTER_RESTART.get(record.state)
            if settled is State.DESTROYED:
                self.purge(record)
                continue
            if settled is not None:
                record.set_state(settled)
                self.save(record)
            self._records[record.id] = record

    def sandbox_dir(self, sandbox_id: str) -> Path:
        """The directory that holds one sandbox's record and files."""
        return self.root / sandbox_id

    def home_dir(self, sandbox_id: str) -> Path:
        """Host path of the sandbox's home (and work) directory."""
        return self.sandbox_dir(sandbox_id) / "home"

    def tmp_dir(self, sandbox_id: str) -> Path:
        """Host path of the sandbox's private ``/tmp``."""
        return self.sandbox_dir(sandbox_id) / "tmp"

    def volume_dir(self, volume_id: str) -> Path:
        """Host directory holding one volume's files."""
        return self.data_dir / "volumes" / volume_id

    def objects_dir(self) -> Path:
        """Host directory of the object storage the SDK uploads build contexts to."""
        return self.data_dir / "objects"

    def copy_files(self, source_id: str, target_id: str) -> None:
        """Give sandbox `target_id` (not yet added) a copy of the files of `source_id`."""
        self.sandbox_dir(target_id).mkdir(parents=True)
        for name in ("home", "tmp"):
            copy_tree(self.sandbox_dir(source_id) / name, self.sandbox_dir(target_id) / name)
        upper = self.sandbox_dir(source_id) / "root" / "upper"
        if upper.is_dir():  # an image sandbox: what it wrote over its image
            (self.sandbox_dir(target_id) / "root").mkdir()
            copy_tree(upper, self.sandbox_dir(target_id) / "root" / "upper")

    def add(self, record: SandboxRecord, *, files_ready: bool = False) -> None:
        """Create the sandbox's directories (unless `files_ready`: see `copy_files`) and
        persist its first record."""
        if not files_ready:
            self.home_dir(record.id).mkdir(parents=True, mode=0o755)
            self.tmp_dir(record.id).mkdir(mode=0o1777)
            os.chmod(self.tmp_dir(record.id), 0o1777)
        self._records[record.id] = record
        self.save(record)

    def save(self, record: SandboxRecord) -> None:
        """Persist `record` atomically."""
        atomic_write(
            self.sandbox_dir(record.id) / STATE_FILE,
            record.model_dump_json(indent=1).encode(),
        )

    def purge(self, record: SandboxRecord) -> None:
        """Forget a destroyed sandbox and remove its files."""
        self._records.pop(record.id, None)
        shutil.rmtree(self.sandbox_dir(record.id), ignore_errors=True)

    def get(self, id_or_name: str) -> SandboxRecord | None:
        """A live record by id, else by name."""
        record = self._records.get(id_or_name)
        if record is not None:
            return record
        return next((r for r in self._records.values() if r.name == id_or_name), None)

    def __iter__(self) -> Iterator[SandboxRecord]:
        return iter(sorted(self._records.values(), key=lambda r: (r.created_at, r.id)))

    def __len__(self) -> int:
        return len(self._records)


def copy_tree(source: Path, target: Path) -> None:
    """Copy a directory tree keeping modes, owners, links and times; copy-on-write where the
    file system can (``cp -a --reflink=auto``), else a plain copy."""
    try:
        subprocess.run(
            ["cp", "-a", "--reflink=auto", "--", str(source), str(target)],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        log.debug("cp -a failed (%s), copying with shutil", exc)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)
