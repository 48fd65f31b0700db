"""moto's TransactWriteItems without its deep copies, same outcome.

moto 5.2 deep-copies every table a transaction touches, once per action, so that it can roll
back when an action fails: each call costs O(table size), and a ledger of thousands of unit
records makes every transaction slower than the last (AWS has no such cost). Here the
rollback keeps the touched items instead: their state before the call is put back when the
transaction fails, as moto's own rollback would leave them.

Also: DynamoDB's writes made atomic, as in AWS. moto's server handles requests on many
threads, and its conditional UpdateItem checks the condition and then writes, unlocked: two
racing conditional moves of one item could both succeed (seen on the rate-budget timeline,
where each would then hold the same slots). One lock around the write operations gives the
per-item atomicity DynamoDB guarantees.

Also: SQS's send path without its queue scans. moto reads `queue.attributes` six times for
each message it sends to a FIFO queue, only for ContentBasedDeduplication, and that property
computes the approximate counts by scanning every message in the queue, three times: a send
costs O(depth), and a storm's scope queue, a few thousand units deep, made every send slower
than the last (py-spy on the bench's moto: the send path of SendMessageBatch held its GIL).
While moto sends, the attribute is read from the queue itself; GetQueueAttributes still counts.

Also: moto's server finds a request's backend without listing its own package. For every
request, under one lock, it lists moto's ~200 module folders on disk (`list_of_moto_modules`,
twice) and matches the host against every backend's URL patterns: a few milliseconds per
call, every call in one queue. Both answers depend only on the host, so they are kept.

Applied by the local stack (`tooling.testkit.local_stack`) and by
`python -m tooling.testkit.moto_server` (moto's server in a process of its own, for benchmarks).
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

from moto import backends
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import Queue, SQSBackend

_state = threading.local()


def _table_deepcopy(table: Table, memo: dict[int, Any]) -> Table:
    if getattr(_state, "transacting", False):
        return table  # rolled back item by item instead (below)
    # Anywhere else (backups, restores): the generic deep copy, as without this module.
    rv = table.__reduce_ex__(4)
    return copy._reconstruct(table, memo, *rv)  # type: ignore[attr-defined,no-any-return]


_WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")
_write_lock = threading.RLock()


def _serialised(operation: Any) -> Any:
    @functools.wraps(operation)  # keeps the markers (keeps_touched_items) of what it wraps
    def serialised(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return operation(self, *args, **kwargs)

    serialised.serialised = True  # type: ignore[attr-defined]
    return serialised


def _make_writes_atomic() -> None:
    for name in _WRITE_OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        if not getattr(operation, "serialised", False):
            setattr(DynamoDBBackend, name, _serialised(operation))


def apply() -> None:
    _apply_transactions()
    _make_writes_atomic()
    _send_without_queue_scans()
    _dispatch_without_rescans()


def _dispatch_without_rescans() -> None:
    if getattr(DomainDispatcherApplication.get_backend_for_host, "kept", False):
        return
    modules = tuple(backends.list_of_moto_modules())  # moto's own folders: fixed at install
    backends.list_of_moto_modules = lambda: modules
    find = DomainDispatcherApplication.get_backend_for_host
    found: dict[tuple[int, str | None], Any] = {}

    # Called under the dispatcher's lock; a host's backend never changes.
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        key = (id(self), host)
        if key not in found:
            found[key] = find(self, host)
        return found[key]

    get_backend_for_host.kept = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


_ALL_ATTRIBUTES = Queue.attributes


def _queue_attributes(queue: Queue) -> dict[str, Any]:
    if getattr(_state, "sending", False):
        # All that moto's send path reads: the flag, as `attributes` spells it.
        flag = getattr(queue, "content_based_deduplication", False)
        return {"ContentBasedDeduplication": str(bool(flag)).lower()}
    return _ALL_ATTRIBUTES.fget(queue)  # type: ignore[attr-defined,no-any-return]


def _sending(operation: Any) -> Any:
    @functools.wraps(operation)
    def sending(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        nested = getattr(_state, "sending", False)
        _state.sending = True
        try:
            return operation(self, *args, **kwargs)
        finally:
            _state.sending = nested

    sending.without_scans = True  # type: ignore[attr-defined]
    return sending


def _send_without_queue_scans() -> None:
    if getattr(SQSBackend.send_message, "without_scans", False):
        return
    for name in ("send_message", "send_message_batch"):
        setattr(SQSBackend, name, _sending(getattr(SQSBackend, name)))
    Queue.attributes = property(_queue_attributes)  # type: ignore[method-assign,assignment]


def _apply_transactions() -> None:
    original = DynamoDBBackend.transact_write_items
    if getattr(original, "keeps_touched_items", False):
        return

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        try:
            touched = [_touched(self, op_type, op) for item in transact_items
                       for op_type, op in item.items()]  # fmt: skip
        except Exception:  # malformed: moto's own code reports it
            touched = None
        if touched is None:
            original(self, transact_items)
            return
        _state.transacting = True
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in reversed(touched):
                table.delete_item(hash_key, range_key)
                if before is not None:
                    table.put_item(before, overwrite=True)
            raise
        finally:
            _state.transacting = False

    transact_write_items.keeps_touched_items = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.__deepcopy__ = _table_deepcopy  # type: ignore[attr-defined]


def _touched(
    backend: DynamoDBBackend, op_type: str, op: dict[str, Any]
) -> tuple[Table, DynamoType, DynamoType | None, dict[str, Any] | None]:
    table = backend.get_table(op["TableName"])
    key = op["Item"] if op_type == "Put" else op["Key"]
    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    current = table.get_item(hash_key, range_key)
    before = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
    return table, hash_key, range_key, before
