"""A plain Python Kafka → Function Compute sink: the baseline fcsink is measured against.

It does the job fcsink does with the built-in `passthrough` plugin, the way a
typical Python sink would: one consumer thread (confluent-kafka), records
batched per partition up to `--batch-size` or `--linger-ms`, each batch encoded
as fcsink's FC payload (see host/src/format/fc.rs: same keys in the same order,
compact JSON, split at `--max-bytes`), each request signed with the FC 2.0
signature and POSTed with one `requests.Session`, offsets stored only after
delivery and committed in the background (at-least-once). It stops once it has
delivered `--records` records, commits, and prints one JSON line:

    {"records": 100000, "elapsed_s": 3.2, "records_per_s": 31000.0}

`elapsed_s` runs from just before the consumer is created to the last delivery.
The credentials come from FC_ACCESS_KEY_ID and FC_ACCESS_KEY_SECRET.

    FC_ACCESS_KEY_ID=… FC_ACCESS_KEY_SECRET=… python bench/baseline.py \\
        --bootstrap 127.0.0.1:9092 --topic in --group baseline \\
        --endpoint http://127.0.0.1:9000 --service svc --function fn \\
        --batch-size 20 --linger-ms 50 --max-bytes 131072 --records 100000
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import json
import os
import sys
import time

import requests
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

# Messages asked of librdkafka per consume() call.
CONSUME_BATCH = 1000
# Longest a consume() call waits when no partial batch is lingering.
IDLE_POLL_S = 0.1
# Attempts per request: the first and two retries, as fcsink's default.
ATTEMPTS = 3
RETRY_STATUSES = {408, 429} | {s for s in range(500, 600) if s != 501}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--endpoint", required=True, help="http://host:port")
    p.add_argument("--service", required=True)
    p.add_argument("--function", required=True)
    p.add_argument("--qualifier", default="LATEST")
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--linger-ms", type=int, default=500)
    p.add_argument("--max-bytes", type=int, default=128 * 1024)
    p.add_argument("--records", type=int, required=True, help="stop after delivering this many")
    return p.parse_args()


# --- payload: the managed connector's JSON array, as host/src/format/fc.rs writes it ---


def _text_or_base64(data):
    """(JSON-ready text, encoding name or None): UTF-8 as is, anything else as base64."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _element(msg, with_key, with_value):
    key, value = msg.key(), msg.value()
    ts_type, ts = msg.timestamp()
    obj = {}
    if key is not None and with_key:
        obj["key"], encoding = _text_or_base64(key)
        if encoding:
            obj["keyEncoding"] = encoding
    obj["offset"] = msg.offset()
    obj["overflowFlag"] = not with_value
    obj["partition"] = msg.partition()
    obj["timestamp"] = -1 if ts_type == TIMESTAMP_NOT_AVAILABLE else ts
    obj["topic"] = msg.topic()
    if value is not None and with_value:
        obj["value"], encoding = _text_or_base64(value)
        if encoding:
            obj["valueEncoding"] = encoding
    obj["valueSize"] = 0 if value is None else len(value)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(batch, max_records, max_bytes):
    """Request bodies for `batch`, each with its record count, within both limits.

    A record too large to fit alone goes alone, without its value (and key if
    need be), flagged with overflowFlag.
    """
    requests_out = []
    body, count, alone = [], 0, False
    size = 1  # the closing bracket
    for msg in batch:
        elem, overflow = _element(msg, True, True), False
        if len(elem) + 2 > max_bytes:
            overflow = True
            elem = _element(msg, True, False)
            if len(elem) + 2 > max_bytes:
                elem = _element(msg, False, False)
        if count and (count == max_records or size + 1 + len(elem) > max_bytes or overflow or alone):
            requests_out.append((b"[" + b",".join(body) + b"]", count))
            body, count, size = [], 0, 1
        body.append(elem)
        count += 1
        size += 1 + len(elem)
        alone = overflow
    if count:
        requests_out.append((b"[" + b",".join(body) + b"]", count))
    return requests_out


# --- invocation: FC 2.0 InvokeFunction, signed as sign/src/fc2.rs signs it ---


class Function:
    def __init__(self, args, key_id, key_secret):
        self.path = (
            f"/2016-08-15/services/{args.service}.{args.qualifier}"
            f"/functions/{args.function}/invocations"
        )
        self.url = args.endpoint.rstrip("/") + self.path
        self.key_id = key_id
        self.secret = key_secret.encode("utf-8")
        self.session = requests.Session()

    def _headers(self):
        date = email.utils.formatdate(usegmt=True)
        to_sign = f"POST\n\napplication/json\n{date}\nx-fc-invocation-type:Async\n{self.path}"
        digest = hmac.new(self.secret, to_sign.encode("utf-8"), hashlib.sha256).digest()
        return {
            "content-type": "application/json",
            "date": date,
            "x-fc-invocation-type": "Async",
            "authorization": f"FC {self.key_id}:{base64.b64encode(digest).decode('ascii')}",
        }

    def invoke(self, body):
        """POSTs `body` until the function accepts it; raises once retries run out."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.session.post(self.url, data=body, headers=self._headers(), timeout=10)
            except requests.RequestException as err:
                if attempt == ATTEMPTS:
                    raise
                print(f"retrying after {err}", file=sys.stderr)
            else:
                if 200 <= response.status_code < 300 and "x-fc-error-type" not in response.headers:
                    return
                if response.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
            time.sleep(0.5 * 2 ** (attempt - 1))


# --- the sink ---


def main():
    args = parse_args()
    function = Function(args, os.environ["FC_ACCESS_KEY_ID"], os.environ["FC_ACCESS_KEY_SECRET"])
    linger = args.linger_ms / 1000
    started = time.monotonic()
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        # As fcsink: commit in the background, but only offsets stored after delivery.
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1000,
        "enable.auto.offset.store": False,
    })
    consumer.subscribe([args.topic])

    # (topic, partition) -> [messages], and when each partial batch must go.
    pending, deadlines = {}, {}
    delivered = 0

    def flush(tp):
        nonlocal delivered
        batch = pending.pop(tp)
        del deadlines[tp]
        for body, count in encode(batch, args.batch_size, args.max_bytes):
            function.invoke(body)
            delivered += count
        consumer.store_offsets(offsets=[TopicPartition(tp[0], tp[1], batch[-1].offset() + 1)])

    while delivered < args.records:
        now = time.monotonic()
        timeout = min([IDLE_POLL_S] + [max(0.0, d - now) for d in deadlines.values()])
        for msg in consumer.consume(num_messages=CONSUME_BATCH, timeout=timeout):
            if msg.error():
                if msg.error().fatal():
                    raise KafkaException(msg.error())
                print(f"consumer error: {msg.error()}", file=sys.stderr)
                continue
            tp = (msg.topic(), msg.partition())
            batch = pending.get(tp)
            if batch is None:
                batch = pending[tp] = []
                deadlines[tp] = time.monotonic() + linger
            batch.append(msg)
            if len(batch) == args.batch_size:
                flush(tp)
        now = time.monotonic()
        for tp in [tp for tp, d in deadlines.items() if d <= now]:
            flush(tp)

    elapsed = time.monotonic() - started
    # Flush what is left so every stored offset covers delivered records only.
    for tp in list(pending):
        flush(tp)
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as err:
        print(f"final commit: {err}", file=sys.stderr)
    consumer.close()
    print(json.dumps({
        "records": delivered,
        "elapsed_s": round(elapsed, 3),
        "records_per_s": round(delivered / elapsed, 1),
    }))


if __name__ == "__main__":
    main()
