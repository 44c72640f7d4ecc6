"""A durable table of pydantic records, one JSON file each, for snapshots and volumes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..._files import atomic_write

log = logging.getLogger(__name__)


RecordT = TypeVar("RecordT", bound=BaseModel)


class Table(Generic[RecordT]):
    """Records of one kind under `directory`, by id, with lookup by id or name."""

    def __init__(self, directory: Path, model: type[RecordT]) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, RecordT] = {}
        for path in sorted(directory.glob("*.json")):
            try:
                record = model.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                log.warning("skipping unreadable record %s: %s", path, exc)
                continue
            self._records[_key(record)] = record

    def save(self, record: RecordT) -> None:
        """Add or update `record` on disk and in memory."""
        atomic_write(self.directory / f"{_key(record)}.json", record.model_dump_json().encode())
        self._records[_key(record)] = record

    def remove(self, record: RecordT) -> None:
        """Forget `record`."""
        self._records.pop(_key(record), None)
        (self.directory / f"{_key(record)}.json").unlink(missing_ok=True)

    def get(self, id_or_name: str) -> RecordT | None:
        """A record by id, else by name."""
        record = self._records.get(id_or_name)
        if record is not None:
            return record
        return next(
            (r for r in self._records.values() if getattr(r, "name", None) == id_or_name), None
        )

    def __iter__(self) -> Iterator[RecordT]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)


def _key(record: BaseModel) -> str:
    return str(getattr(record, "id"))  # noqa: B009 - every tabled record has an id
