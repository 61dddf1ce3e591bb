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
        # A cancelled transaction writes nothing, so it leaves no stream record either (moto
        # writes the operations whose conditions held before it cancels, and each write adds a
        # record to the table's stream).
        streams = {}
        for entry in transact_items:
            for op in entry.values():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                key = _key_of(table, op.get("Key") or op.get("Item") or {}) if table else None
                if key is not None:
                    current = table.get_item(*key)
                    saved.append((table, key, None if current is None else _copy.deepcopy(current)))
                    shard = table.stream_shard
                    if shard is not None and id(shard) not in streams:
                        streams[id(shard)] = (shard, len(shard.items))
        _ddb.copy = _NoTableCopy()
        try:
            return _transact_write_items(self, transact_items)
        except Exception:
            for shard, length in streams.values():
                if len(shard.items) >= length:
                    del shard.items[length:]
            for table, (hash_value, range_value), item in reversed(saved):
                # The key index (below) follows the items put back, as it follows writes.
                index = table.__dict__.get("_elevate_key_index")
                if index is not None:
                    try:
                        index.moved(table.get_item(hash_value, range_value), item)
                    except Exception:
                        table.__dict__.pop("_elevate_key_index", None)
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
# - a Query of the table looks only at the items of its partition;
# - an index Query looks only at the items that carry the index's hash key value (the others
#   never match), sorted the same way. On a table with a stream, every write goes through
#   StreamShard.add(old, new): an index of the table's items by the value of each index hash
#   key attribute is built on the first index Query (one pass) and kept up to date there, so a
#   Query reads its partition only. Without a stream, or if anything about it is unexpected,
#   the items carrying the value are found by a pass over every item, as before;
# - a Scan of an index (a whole-trail `audit export` pages through one) sorts the index's items
#   once per table version (until the next write) and starts each page at its
#   ExclusiveStartKey by bisection, instead of sorting and walking the whole index per page.
try:
    import bisect as _bisect
    import inspect as _inspect
    from moto.dynamodb.models.table import StreamShard as _StreamShard
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

    def _value_key(value):
        # What DynamoType's == and hash compare.
        return value.type, value.cast_value

    class _KeyIndex:
        """A table's items by the value of each index hash key attribute."""

        def __init__(self, table):
            self.attrs = frozenset(
                key["AttributeName"]
                for index in table.all_indexes()
                for key in index.schema
                if key["KeyType"] == "HASH"
            )
            self.buckets = {name: {} for name in self.attrs}
            # Index Scans sorted for the table as it is now: dropped at every write.
            self.scans = {}
            for item in _items_of(table):
                self.add(item)

        def add(self, item):
            key = (item.hash_key, item.range_key)
            for name in self.attrs:
                value = item.attrs.get(name)
                if value is not None:
                    self.buckets[name].setdefault(_value_key(value), {})[key] = item

        def remove(self, item):
            key = (item.hash_key, item.range_key)
            for name in self.attrs:
                value = item.attrs.get(name)
                if value is None:
                    continue
                values = self.buckets[name]
                bucket = values.get(_value_key(value))
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del values[_value_key(value)]

        def moved(self, old, new):
            self.scans.clear()
            if old is not None:
                self.remove(old)
            if new is not None:
                self.add(new)

    def _key_index(table, names):
        """The table's key index, covering the attributes `names`; None when it has none."""
        if table.stream_shard is None or table.__dict__.get("_elevate_key_index_failed"):
            return None
        index = table.__dict__.get("_elevate_key_index")
        if index is None or not names <= index.attrs:
            table._elevate_key_index = None
            try:
                index = _KeyIndex(table)
            except Exception:
                table._elevate_key_index_failed = True
                return None
            table._elevate_key_index = index
        return index if names <= index.attrs else None

    def _drop_key_index(table):
        table.__dict__.pop("_elevate_key_index", None)

    _stream_add = _StreamShard.add

    def _add_and_index(self, old, new):
        # The write is already in the table: the index follows it whatever the stream does.
        table = getattr(self, "table", None)
        index = table.__dict__.get("_elevate_key_index") if table is not None else None
        if index is not None:
            try:
                index.moved(old, new)
            except Exception:
                _drop_key_index(table)
        return _stream_add(self, old, new)

    _StreamShard.add = _add_and_index

    # The table a Query on this thread is answering, and the items it may look at.
    _index_query = threading.local()

    def _all_items(self):
        answering = getattr(_index_query, "answering", None)
        if answering is not None and answering[0] is self:
            return answering[1]()
        return sorted(_items_of(self), key=_sort_key)

    _Table.all_items = _all_items

    _query = _Table.query
    _query_signature = _inspect.signature(_query)

    def _partition(table, hash_key):
        """The items whose table hash key is `hash_key`."""
        if table.range_key_attr:
            found = table.items.get(hash_key)
            return list(found.values()) if found else []
        found = table.items.get(hash_key)
        return [] if found is None else [found]

    def _indexed(table, conditions):
        """The items that may match the hash key `conditions` of an index Query, from the key
        index (the smallest of their buckets); None when the table has no key index."""
        index = _key_index(table, {name for name, _ in conditions})
        if index is None:
            return None
        smallest = None
        for name, value in conditions:
            bucket = index.buckets[name].get(_value_key(value), {})
            if smallest is None or len(bucket) < len(smallest):
                smallest = bucket
        return list(smallest.values())

    def _query_on_candidates(self, *args, **kwargs):
        called = _query_signature.bind(self, *args, **kwargs).arguments
        conditions = list(called.get("hash_key_conditions") or [])
        hash_key = called.get("hash_key")
        if called.get("index_name"):
            if not conditions:
                return _query(self, *args, **kwargs)

            def matches(item):
                for name, value in conditions:
                    found = item.attrs.get(name)
                    if found is None or found != value:
                        return False
                return True

            def candidates():
                try:
                    found = _indexed(self, conditions)
                except Exception:
                    found = None
                if found is None:
                    found = _items_of(self)
                return sorted(filter(matches, found), key=_sort_key)

        elif hash_key is not None:

            def candidates():
                return sorted(_partition(self, hash_key), key=_sort_key)

        else:
            return _query(self, *args, **kwargs)

        _index_query.answering = (self, candidates)
        try:
            return _query(self, *args, **kwargs)
        finally:
            _index_query.answering = None

    _Table.query = _query_on_candidates

    # The page of an index Scan on this thread: what has_idx_items answers for it.
    _index_scan = threading.local()

    _has_idx_items = _Table.has_idx_items

    def _has_idx_items_of_page(self, index_name):
        answering = getattr(_index_scan, "answering", None)
        if answering is not None and answering[0] is self:
            return list(answering[1])
        return _has_idx_items(self, index_name)

    _Table.has_idx_items = _has_idx_items_of_page

    def _sorted_index(table, index_name):
        """The items of an index in the order moto's Scan sorts them, with their sort keys;
        None when that order is not plain string order or the table has no key index."""
        index = table.get_index(index_name)
        hash_keys = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
        range_keys = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
        keys = _key_index(table, set(hash_keys[:1]))
        if keys is None or not hash_keys:
            return None
        cached = keys.scans.get(index_name)
        if cached is not None:
            return cached
        # As moto's Scan: the index's first hash and range keys, then the table's.
        hash_attrs = [hash_keys[0], table.hash_key_attr]
        if range_keys:
            range_attrs = [range_keys[0], table.range_key_attr]
        else:
            range_attrs = [table.range_key_attr]
        sort_attrs = table._generate_attr_to_sort_by(hash_attrs, range_attrs)
        columns = {k["AttributeName"] for k in index.schema}
        decorated = []
        for bucket in keys.buckets[hash_keys[0]].values():
            for item in bucket.values():
                if not columns.issubset(item.attrs):
                    continue
                values = [item.attrs[name] for name in sort_attrs]
                if any(value.type != "S" for value in values):
                    return None
                decorated.append((tuple(value.value for value in values), item))
        decorated.sort(key=lambda pair: pair[0])
        cached = (sort_attrs, [k for k, _ in decorated], [item for _, item in decorated])
        keys.scans[index_name] = cached
        return cached

    def _scan_page(table, index_name, start_key, limit):
        """The items a Scan page of an index may read (those after `start_key`, one more than
        `limit`); None to let moto read them all."""
        found = _sorted_index(table, index_name)
        if found is None:
            return None
        sort_attrs, keys, items = found
        start = 0
        if start_key is not None:
            wanted = []
            for name in sort_attrs:
                value = start_key.get(name)
                if not isinstance(value, dict) or list(value) != ["S"]:
                    return None
                wanted.append(value["S"])
            start = _bisect.bisect_right(keys, tuple(wanted))
        if limit is None:
            return items[start:]
        return items[start : start + int(limit) + 1]

    _scan = _Table.scan
    _scan_signature = _inspect.signature(_scan)

    def _scan_from_start_key(self, *args, **kwargs):
        called = _scan_signature.bind(self, *args, **kwargs)
        arguments = called.arguments
        segments = arguments.get("segments") or (None, None)
        if (
            not arguments.get("index_name")
            or arguments.get("filters")
            or tuple(segments) != (None, None)
        ):
            return _scan(self, *args, **kwargs)
        try:
            page = _scan_page(
                self,
                arguments["index_name"],
                arguments.get("exclusive_start_key"),
                arguments.get("limit"),
            )
        except Exception:
            page = None
        if page is None:
            return _scan(self, *args, **kwargs)
        arguments["exclusive_start_key"] = None
        _index_scan.answering = (self, page)
        try:
            return _scan(*called.args, **called.kwargs)
        finally:
            _index_scan.answering = None

    _Table.scan = _scan_from_start_key
except Exception:  # moto changed: its own (slower) Query and Scan still answer
    pass

# A Query copies every item it read and only then applies the FilterExpression to the copies.
# DynamoDB reads (and counts) those items too, but returns only the kept ones; copying only
# those keeps a Query of a large partition with a narrow filter (one requester's open grants
# among hundreds of people's) from costing moto a deep copy of every item it skips. The filter
# is applied again to the copies, as before; only an index that projects every attribute, or
# the table itself, is filtered early, so the filter sees the attributes it would have seen.
try:
    import copy as _copy_module
    import inspect as _inspect_query
    import types as _types
    from moto.dynamodb.models import table as _table_module
    from moto.dynamodb.models.table import Table as _QueryTable

    _early_filter = threading.local()

    class _CopyKeptOnly(_types.ModuleType):
        def __getattr__(self, name):
            return getattr(_copy_module, name)

        def deepcopy(self, value, memo=None):
            keep = getattr(_early_filter, "keep", None)
            if keep is not None and isinstance(value, list):
                _early_filter.keep = None
                value = [item for item in value if keep(item)]
            return _copy_module.deepcopy(value, memo)

    _unfiltered_query = _QueryTable.query
    try:
        _filtered_signature = _query_signature
    except NameError:
        _filtered_signature = _inspect_query.signature(_unfiltered_query)

    def _query_copying_kept(self, *args, **kwargs):
        called = _filtered_signature.bind(self, *args, **kwargs).arguments
        expression = called.get("filter_expression")
        index_name = called.get("index_name")
        if index_name is None:
            projects_all = True
        else:
            projection = self.get_index(index_name).projection or {}
            projects_all = projection.get("ProjectionType") == "ALL"
        if expression is None or not projects_all:
            return _unfiltered_query(self, *args, **kwargs)
        _early_filter.keep = expression.expr
        try:
            return _unfiltered_query(self, *args, **kwargs)
        finally:
            _early_filter.keep = None

    _table_module.copy = _CopyKeptOnly("copy")
    _QueryTable.query = _query_copying_kept
except Exception:  # moto changed: it copies everything it read, as before
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

# moto builds an item attribute by attribute, and each attribute set re-sizes every attribute
# already set (its 400 KB check), which is quadratic in the attributes (a request item has ~30,
# some nested): most of a write's time. Summing the sizes as they are set refuses the same
# items at the same attribute, with the same error.
try:
    import inspect as _inspect_module
    from moto.dynamodb.exceptions import ItemSizeTooLarge as _ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type as _dynamo_type
    from moto.dynamodb.models.utilities import bytesize as _bytesize

    _item_size_limit = 405000
    # The limit moto's check holds, read from it: if it is not where it was, leave it alone.
    if "405000" not in _inspect_module.getsource(_dynamo_type.LimitedSizeDict.__setitem__):
        raise ValueError("moto's item size check changed")

    def _item_init(self, hash_key, range_key, attrs):
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = _dynamo_type.LimitedSizeDict()
        size = 0
        for key, value in attrs.items():
            value = _dynamo_type.DynamoType(value)
            size += _bytesize(key) + value.size()
            if size > _item_size_limit:
                raise _ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, value)

    _dynamo_type.Item.__init__ = _item_init
except Exception:  # moto changed: its own (quadratic) check still runs
    pass

# moto serializes every attribute value of an answer through the generic shape walker, member
# by member of the AttributeValue shape (ten look-ups with name aliases each): a Query or Scan
# page of 500 items took a second. A value already in DynamoDB's JSON form (one of S, N, BOOL,
# NULL, SS, NS, L, M, holding only such values) serializes to itself, so it is passed as is.
try:
    from moto.core import serialize as _serialize

    _serialize_structure = _serialize.BaseJSONSerializer._serialize_type_structure
    _scalar_types = {"S": str, "N": str, "BOOL": bool, "NULL": bool}

    def _wire_form(value, depth=0):
        if type(value) is not dict or len(value) != 1 or depth > 32:
            return False
        ((kind, inner),) = value.items()
        scalar = _scalar_types.get(kind)
        if scalar is not None:
            return type(inner) is scalar
        if kind in ("SS", "NS"):
            return type(inner) is list and all(type(x) is str for x in inner)
        if kind == "L":
            return type(inner) is list and all(_wire_form(x, depth + 1) for x in inner)
        if kind == "M":
            return type(inner) is dict and all(
                type(k) is str and _wire_form(v, depth + 1) for k, v in inner.items()
            )
        return False

    def _attribute_value_as_is(self, serialized, value, shape, key):
        if (
            key
            and shape.name == "AttributeValue"
            and self.operation_model.service_model.service_name
            in ("dynamodb", "dynamodbstreams")
            and _wire_form(value)
        ):
            self._default_serialize(serialized, value, shape, key)
            return
        _serialize_structure(self, serialized, value, shape, key)

    _serialize.BaseJSONSerializer._serialize_type_structure = _attribute_value_as_is
except Exception:  # moto changed: its own serializer still answers
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

# IAM Identity Center account assignments as AWS has them, where moto differs:
# - an assignment is one (instance, account, permission set, principal) tuple: creating one
#   that exists adds no second copy;
# - creating and deleting are asynchronous: answered IN_PROGRESS, and the first
#   Describe...Status of a request is IN_PROGRESS too, then SUCCEEDED; a request id stays
#   describable after its assignment is gone;
# - permission set ARNs have AWS's shape, arn:aws:sso:::permissionSet/ssoins-.../ps-...;
# - faults for tests, chosen by a permission set's name: `fault-conflict-<n>` answers the
#   first n creates and deletes of its assignments with ConflictException, `fault-throttle-<n>`
#   with ThrottlingException, and `fault-failed-<n>` makes the first n creations end FAILED
#   with a FailureReason (and assign nothing); `fault-conflict-<n>` also meets the first n
#   provisionings of the permission set;
# - ProvisionPermissionSet is asynchronous the same way, and
#   DescribePermissionSetProvisioningStatus (which moto lacks) follows it.
try:
    import json as _sso_json
    import re as _sso_re
    import uuid as _sso_uuid

    from moto.core.exceptions import JsonRESTError as _JsonRESTError
    from moto.moto_api._internal import mock_random as _sso_random
    from moto.ssoadmin import models as _sso_models
    from moto.ssoadmin.exceptions import ConflictException as _SsoConflict
    from moto.ssoadmin.exceptions import ResourceNotFoundException as _SsoNotFound
    from moto.ssoadmin.responses import SSOAdminResponse as _SSOAdminResponse

    class _SsoThrottled(_JsonRESTError):
        code = 400

        def __init__(self):
            super().__init__(error_type="ThrottlingException", message="Rate exceeded")

    def _permission_set_arn(instance_arn):
        return (
            instance_arn.replace(":instance/", ":permissionSet/", 1)
            + "/ps-"
            + _sso_random.get_random_string(length=16).lower()
        )

    _sso_models.PermissionSet.generate_id = staticmethod(_permission_set_arn)

    _ASSIGNMENT_FIELDS = (
        "InstanceArn",
        "TargetId",
        "TargetType",
        "PermissionSetArn",
        "PrincipalType",
        "PrincipalId",
    )

    def _sso_requests(backend):
        requests = backend.__dict__.get("_elevate_requests")
        if requests is None:
            requests = backend._elevate_requests = {}
        return requests

    def _sso_fault(backend, permission_set_arn, operation):
        """The fault this call meets, if its permission set's name plans one."""
        for permission_set in backend.permission_sets:
            if permission_set.permission_set_arn != permission_set_arn:
                continue
            found = _sso_re.search(r"fault-(conflict|throttle|failed)-(\d+)", permission_set.name or "")
            if not found or (found.group(1) == "failed" and operation != "create"):
                return None
            left = permission_set.__dict__.get("_elevate_faults_left", int(found.group(2)))
            if left <= 0:
                return None
            permission_set._elevate_faults_left = left - 1
            return found.group(1)
        return None

    def _sso_find(backend, params):
        """The assignment of this tuple, by moto's own look-up; None when there is none."""
        try:
            return backend._find_account(
                params.get("InstanceArn"),
                params.get("TargetId"),
                params.get("TargetType"),
                params.get("PermissionSetArn"),
                params.get("PrincipalType"),
                params.get("PrincipalId"),
            )
        except _SsoNotFound:
            return None

    def _sso_request(backend, params, failure):
        request_id = str(_sso_uuid.uuid4())
        status = {name: params.get(name) for name in _ASSIGNMENT_FIELDS if name != "InstanceArn"}
        status.update({"RequestId": request_id, "Status": "IN_PROGRESS", "CreatedDate": _sso_models.unix_time()})
        _sso_requests(backend)[request_id] = {"status": status, "failure": failure, "described": 0}
        return dict(status)

    def _sso_create(self):
        params = _sso_json.loads(self.body)
        backend = self.ssoadmin_backend
        fault = _sso_fault(backend, params.get("PermissionSetArn"), "create")
        if fault == "conflict":
            raise _SsoConflict("Request is in progress for another account assignment of this permission set")
        if fault == "throttle":
            raise _SsoThrottled()
        failure = None
        if fault == "failed":
            failure = "Received a 404 status error: Not supported policy (stand-in fault)"
        elif _sso_find(backend, params) is None:
            backend.create_account_assignment(
                instance_arn=params.get("InstanceArn"),
                target_id=params.get("TargetId"),
                target_type=params.get("TargetType"),
                permission_set_arn=params.get("PermissionSetArn"),
                principal_type=params.get("PrincipalType"),
                principal_id=params.get("PrincipalId"),
            )
        status = _sso_request(backend, params, failure)
        return _sso_json.dumps({"AccountAssignmentCreationStatus": status})

    def _sso_delete(self):
        params = _sso_json.loads(self.body)
        backend = self.ssoadmin_backend
        fault = _sso_fault(backend, params.get("PermissionSetArn"), "delete")
        if fault == "conflict":
            raise _SsoConflict("Request is in progress for another account assignment of this permission set")
        if fault == "throttle":
            raise _SsoThrottled()
        assignment = _sso_find(backend, params)
        if assignment is None:
            raise _SsoNotFound("The account assignment does not exist")
        backend.account_assignments.remove(assignment)
        backend.deleted_account_assignments.append(assignment)
        status = _sso_request(backend, params, None)
        return _sso_json.dumps({"AccountAssignmentDeletionStatus": status})

    def _sso_describe(self, id_param, answer):
        request = _sso_requests(self.ssoadmin_backend).get(self._get_param(id_param))
        if request is None:
            raise _SsoNotFound("The request does not exist")
        request["described"] += 1
        status = dict(request["status"])
        if request["described"] > 1:
            if request["failure"] is None:
                status["Status"] = "SUCCEEDED"
            else:
                status["Status"] = "FAILED"
                status["FailureReason"] = request["failure"]
        return _sso_json.dumps({answer: status})

    def _sso_describe_creation(self):
        return _sso_describe(self, "AccountAssignmentCreationRequestId", "AccountAssignmentCreationStatus")

    def _sso_describe_deletion(self):
        return _sso_describe(self, "AccountAssignmentDeletionRequestId", "AccountAssignmentDeletionStatus")

    def _sso_provision(self):
        params = _sso_json.loads(self.body)
        backend = self.ssoadmin_backend
        if _sso_fault(backend, params.get("PermissionSetArn"), "provision") == "conflict":
            raise _SsoConflict("Another provisioning of this permission set is in progress")
        backend.provision_permission_set(
            instance_arn=params.get("InstanceArn"),
            permission_set_arn=params.get("PermissionSetArn"),
        )
        request_id = str(_sso_uuid.uuid4())
        status = {
            "AccountId": params.get("TargetId"),
            "PermissionSetArn": params.get("PermissionSetArn"),
            "RequestId": request_id,
            "Status": "IN_PROGRESS",
            "CreatedDate": _sso_models.unix_time(),
        }
        _sso_requests(backend)[request_id] = {"status": status, "failure": None, "described": 0}
        return _sso_json.dumps({"PermissionSetProvisioningStatus": status})

    def _sso_describe_provisioning(self):
        return _sso_describe(self, "ProvisionPermissionSetRequestId", "PermissionSetProvisioningStatus")

    _SSOAdminResponse.provision_permission_set = _sso_provision
    _SSOAdminResponse.describe_permission_set_provisioning_status = _sso_describe_provisioning
    _SSOAdminResponse.create_account_assignment = _sso_create
    _SSOAdminResponse.delete_account_assignment = _sso_delete
    _SSOAdminResponse.describe_account_assignment_creation_status = _sso_describe_creation
    _SSOAdminResponse.describe_account_assignment_deletion_status = _sso_describe_deletion
except Exception:  # moto changed: its own (always SUCCEEDED, duplicating) assignments answer
    pass
