"""Field-by-field checks of an incoming JSON document, for the event shapes (`events`) and the
wire shapes of the contract (`contract`). Every problem of one document is collected, so that
one `InvalidEvent` names them all; errors name field paths and reasons, never the values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pleo_scope.errors import InvalidEvent

# Job and company ids go into URLs and S3 keys: accept only the UUID form Pleo uses.
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class FieldChecker:
    def __init__(self, shape: str) -> None:
        self._shape = shape
        self._problems: list[str] = []

    def problem(self, path: str, reason: str) -> None:
        self._problems.append(f"{path}: {reason}")

    def present(self, document: Mapping[str, Any], name: str, prefix: str = "") -> bool:
        if name in document:
            return True
        self.problem(prefix + name, "Field required")
        return False

    def text(self, document: Mapping[str, Any], name: str) -> None:
        if self.present(document, name) and not isinstance(document[name], str):
            self.problem(name, "Input should be a string")

    def text_list(self, document: Mapping[str, Any], name: str) -> None:
        if not self.present(document, name):
            return
        value = document[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(name, "Input should be a list of strings")

    def timestamp(self, document: Mapping[str, Any], name: str) -> None:
        if not self.present(document, name):
            return
        value = document[name]
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.problem(name, "Input should be an ISO 8601 date and time")

    def positive_integer(
        self, document: Mapping[str, Any], name: str, prefix: str = ""
    ) -> int | None:
        if not self.present(document, name, prefix):
            return None
        value = document[name]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.problem(prefix + name, "Input should be an integer of at least 1")
        return None

    def uuid(self, document: Mapping[str, Any], name: str, prefix: str = "") -> str | None:
        """A UUID in any letter case, returned in lower case (one id is one id everywhere)."""
        if not self.present(document, name, prefix):
            return None
        return self._uuid(document[name], prefix + name)

    def optional_uuid(self, document: Mapping[str, Any], name: str, prefix: str = "") -> str | None:
        """Like `uuid`, but absent or null is None."""
        value = document.get(name)
        return None if value is None else self._uuid(value, prefix + name)

    def _uuid(self, value: object, path: str) -> str | None:
        if isinstance(value, str) and UUID.fullmatch(value):
            return value.lower()
        self.problem(path, "Input should be a UUID (8-4-4-4-12 hexadecimal digits)")
        return None

    def finish(self) -> None:
        """Raise `InvalidEvent` naming every problem found, if any."""
        if self._problems:
            raise InvalidEvent(f"invalid {self._shape} event: " + "; ".join(self._problems))
