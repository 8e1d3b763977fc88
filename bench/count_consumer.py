"""A bare Kafka consumer that only counts records: the floor under any sink's cost.

confluent-kafka (librdkafka) in a fresh group from the earliest offset, asking
for the same batches of messages as bench/baseline.py, doing nothing with a
record but counting it. tests/src/bin/bench-pipeline.rs reads this process's
CPU time when it prints each of its two lines on stdout:

    first 1000
    {"records": 400000, "first_to_last_s": 6.1, "records_per_s": 65000.0}

`first N` comes after the first batch that held records (N of them); the JSON
line once `--records` records are counted, with the time from the first batch
to the last and the rate of the records after the first batch. It then waits for stdin to close, so that its CPU time can be
read before it closes the consumer and exits.

    python bench/count_consumer.py --bootstrap 127.0.0.1:9092 --topic in \\
        --group count --records 100000 < /dev/null
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException

# Messages asked of librdkafka per consume() call, as bench/baseline.py.
CONSUME_BATCH = 1000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--records", type=int, required=True, help="stop after counting this many")
    return p.parse_args()


def main():
    args = parse_args()
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([args.topic])
    count, first, first_count = 0, None, 0
    while count < args.records:
        for msg in consumer.consume(num_messages=CONSUME_BATCH, timeout=0.1):
            if msg.error():
                if msg.error().fatal():
                    raise KafkaException(msg.error())
                continue
            count += 1
        if first is None and count:
            first, first_count = time.monotonic(), count
            print(f"first {count}", flush=True)
    elapsed = time.monotonic() - first
    print(json.dumps({
        "records": count,
        "first_to_last_s": round(elapsed, 3),
        "records_per_s": round((count - first_count) / max(elapsed, 1e-6), 1),
    }), flush=True)
    sys.stdin.read()
    consumer.close()


if __name__ == "__main__":
    main()
