"""Run a managed-ETL-style ``deal_message(message)`` as an fcsink plugin.

``fcsink plugin build-python FILE.py`` packages FILE.py together with this
package into a WebAssembly component (with componentize-py). For every
record, the plugin calls ``deal_message`` with a dict and turns its answer
into an outcome.

The message dict
----------------
``key``, ``value``
    ``str``. Kafka bytes are decoded as UTF-8 with ``surrogateescape``:
    bytes that are not UTF-8 become lone surrogates and are encoded back to
    the very same bytes, so ``message["value"] + "suffix"`` appends to the raw
    bytes. A null key or value (no key; a tombstone) is *absent* from the dict
    rather than ``None``, so code that loops over ``message.keys()`` leaves it
    alone and it stays null.
``topic`` (str), ``partition`` (int), ``offset`` (int), ``timestamp`` (int)
    Where the record came from; the timestamp is in milliseconds since the
    Unix epoch, -1 when the broker gave none.
``headers``
    A list of ``(name, value)`` pairs; values are ``str`` as above, or
    ``None`` for a header without a value.

What ``deal_message`` may return
--------------------------------
- a dict: the record is replaced by one record built from it. ``key`` and
  ``value`` may be ``str``, ``bytes`` or ``None``; an absent ``key`` or
  ``value`` means null. Any other field that is absent keeps its input value.
  A dict that describes the input record unchanged keeps the record.
- ``None``: the record is dropped.
- a list of dicts: the record is replaced by those records (none: dropped).

An exception fails the record: it goes to the dead-letter topic with
``"ExceptionType: message"`` as the reason. So does any other return value.

Configuration
-------------
If the module defines ``init(config)``, it is called once with the
plugin's ``config`` table as a dict of strings; raising refuses the
configuration (fcsink does not start, and shows the message). A module
without ``init`` refuses any configuration.
"""

KEY = "key"
VALUE = "value"
ENCODING = "utf-8"
ERRORS = "surrogateescape"


def decode(data):
    """Kafka bytes as str (see the module doc); ``None`` stays ``None``."""
    return None if data is None else data.decode(ENCODING, ERRORS)


def encode(text, field):
    """A returned key, value or header value as Kafka bytes."""
    if text is None:
        return None
    if isinstance(text, str):
        return text.encode(ENCODING, ERRORS)
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    raise TypeError(f"{field} must be str, bytes or None, not {type(text).__name__}")


INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def field(message, name, kind, default, bounds=None):
    """``message[name]`` checked against the record's field type, else ``default``."""
    if name not in message:
        return default
    value = message[name]
    # bool is an int in Python, never a partition or an offset.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"message[{name!r}] must be {kind.__name__}, not {type(value).__name__}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"message[{name!r}] = {value} is out of range")
    return value


def message_of(record):
    """The dict ``deal_message`` receives for ``record``."""
    message = {}
    if record.key is not None:
        message[KEY] = decode(record.key)
    if record.value is not None:
        message[VALUE] = decode(record.value)
    message["topic"] = record.topic
    message["partition"] = record.partition
    message["offset"] = record.offset
    message["timestamp"] = record.timestamp
    message["headers"] = [(h.key, decode(h.value)) for h in record.headers]
    return message


def record_of(message, original, make_record, make_header):
    """The record a returned dict describes; fields it lacks come from ``original``."""
    if not isinstance(message, dict):
        raise TypeError(f"expected a dict, got {type(message).__name__}")
    if "headers" in message:
        headers = []
        for pair in message["headers"]:
            name, value = pair
            if not isinstance(name, str):
                raise TypeError(f"header names must be str, not {type(name).__name__}")
            headers.append(make_header(name, encode(value, f"header {name!r}")))
    else:
        headers = original.headers
    return make_record(
        field(message, "topic", str, original.topic),
        field(message, "partition", int, original.partition, INT32),
        field(message, "offset", int, original.offset, INT64),
        field(message, "timestamp", int, original.timestamp, INT64),
        encode(message.get(KEY), "message['key']"),
        encode(message.get(VALUE), "message['value']"),
        headers,
    )
