# Written by elevate-testkit for one moto_server child.
import threading

try:
    import werkzeug.serving as _serving

    _run_simple = _serving.run_simple
    _lock = threading.Lock()

    def _one_at_a_time(app):
        def handle(environ, start_response):
            def start(status, headers, exc_info=None):
                headers = list(headers) + [("X-Elevate-Testkit", "one-request-at-a-time")]
                return start_response(status, headers, exc_info)

            with _lock:
                return list(app(environ, start))

        return handle

    def run_simple(hostname, port, application, *args, **kwargs):
        return _run_simple(hostname, port, _one_at_a_time(application), *args, **kwargs)

    _serving.run_simple = run_simple
except Exception:  # the harness notices the missing header and says so
    pass

# With one request at a time, a failed transaction only has to put back the items it touched.
# moto copies every table it names instead, which makes each transaction as slow as the table
# is large (seconds once a table holds thousands of items, as in `make bench`).
try:
    import copy as _copy
    import moto.dynamodb.models as _ddb
    from moto.dynamodb.models.dynamo_type import DynamoType as _DynamoType

    _transact_write_items = _ddb.DynamoDBBackend.transact_write_items

    class _NoTableCopy:
        def __getattr__(self, name):
            return getattr(_copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            if isinstance(value, _ddb.Table):
                return value
            return _copy.deepcopy(value, memo)

    def _key_of(table, attrs):
        if table.hash_key_attr not in attrs:
            return None
        hash_value = _DynamoType(attrs[table.hash_key_attr])
        if table.range_key_attr is None:
            return hash_value, None
        if table.range_key_attr not in attrs:
            return None
        return hash_value, _DynamoType(attrs[table.range_key_attr])

    def _transact_touching_only_its_items(self, transact_items):
        saved = []
        for entry in transact_items:
            for op in entry.values():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                key = _key_of(table, op.get("Key") or op.get("Item") or {}) if table else None
                if key is not None:
                    current = table.get_item(*key)
                    saved.append((table, key, None if current is None else _copy.deepcopy(current)))
        _ddb.copy = _NoTableCopy()
        try:
            return _transact_write_items(self, transact_items)
        except Exception:
            for table, (hash_value, range_value), item in reversed(saved):
                if range_value is None:
                    if item is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = item
                elif item is None:
                    table.items[hash_value].pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = item
            raise
        finally:
            _ddb.copy = _copy

    _ddb.DynamoDBBackend.transact_write_items = _transact_touching_only_its_items
except Exception:  # moto changed: its own (slow, whole-table) rollback still works
    pass

# moto answers a Query by sorting every item of the table with DynamoType comparisons, then
# filtering: each Query costs O(n log n) Python calls (~80 ms at 3,000 items), so the queries
# of `make bench` alone saturate it. These give the same answers, in the same order, faster:
# - the full listing sorts on plain key values (what DynamoType compares) instead;
# - an index Query looks only at the items that carry the index's hash key value (the others
#   never match), sorted the same way.
try:
    import inspect as _inspect
    from moto.dynamodb.models.table import Table as _Table

    def _sort_key(item):
        if item.range_key:
            return (item.hash_key.cast_value, item.range_key.cast_value)
        return (item.hash_key.cast_value,)

    def _items_of(table):
        if table.range_key_attr:
            for hash_set in table.items.values():
                yield from hash_set.values()
        else:
            yield from table.items.values()

    # The table an index Query on this thread is answering, and the items it may look at.
    _index_query = threading.local()

    def _all_items(self):
        answering = getattr(_index_query, "answering", None)
        if answering is not None and answering[0] is self:
            return answering[1]()
        return sorted(_items_of(self), key=_sort_key)

    _Table.all_items = _all_items

    _query = _Table.query
    _query_signature = _inspect.signature(_query)

    def _query_on_candidates(self, *args, **kwargs):
        called = _query_signature.bind(self, *args, **kwargs).arguments
        conditions = list(called.get("hash_key_conditions") or [])
        if not called.get("index_name") or not conditions:
            return _query(self, *args, **kwargs)

        def matches(item):
            for name, value in conditions:
                found = item.attrs.get(name)
                if found is None or found != value:
                    return False
            return True

        def candidates():
            return sorted(filter(matches, _items_of(self)), key=_sort_key)

        _index_query.answering = (self, candidates)
        try:
            return _query(self, *args, **kwargs)
        finally:
            _index_query.answering = None

    _Table.query = _query_on_candidates
except Exception:  # moto changed: its own (slower) Query still answers
    pass

# An UpdateExpression may hold one SET, one REMOVE, one ADD and one DELETE clause. moto checks
# that at every node of the parsed expression, which is quadratic in the number of actions (a
# 25-attribute SET takes ~10 ms); the root holds every clause, so checking it alone accepts and
# refuses the same expressions (one with several repeated clauses may name another of them).
try:
    from moto.dynamodb.parsing.ast_nodes import UpdateExpression as _UpdateExpression
    from moto.dynamodb.parsing.validators import ActionCountValidator as _ActionCountValidator

    def _count_at_the_root(self, node):
        if isinstance(node, _UpdateExpression):
            return self.verify_action_counts(node)
        return node

    _ActionCountValidator.traverse = _count_at_the_root
except Exception:  # moto changed: its own check still runs
    pass

# moto finds the service of every request by listing its own package directory (a listdir and
# a stat per service, ~1 ms). The installed services do not change while the server runs.
try:
    import moto.backends as _backends

    _moto_modules = tuple(_backends.list_of_moto_modules())

    def _listed_once():
        return iter(_moto_modules)

    _backends.list_of_moto_modules = _listed_once
except Exception:  # moto changed: it lists them per request as before
    pass
