"""Reads a whole topic with confluent-kafka (an independent client, not
librdkafka through fcsink's code) and prints one JSON object per record:
{"partition", "offset", "key", "value", "headers": [[k, v], ...]}, bytes as
latin-1 text so any byte survives.

    python kafka_read.py BOOTSTRAP TOPIC
"""
import json
import sys

from confluent_kafka import Consumer, TopicPartition


def text(b):
    return None if b is None else b.decode("latin-1")


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-read-py",
                         "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    out = []
    for partition in sorted(metadata.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            continue
        consumer.assign([TopicPartition(topic, partition, low)])
        seen = low
        while seen < high:
            message = consumer.poll(10)
            if message is None:
                raise SystemExit(f"timed out reading {topic}[{partition}] at {seen} of {high}")
            if message.error():
                raise SystemExit(str(message.error()))
            out.append({
                "partition": message.partition(),
                "offset": message.offset(),
                "key": text(message.key()),
                "value": text(message.value()),
                "headers": [[k, text(v)] for k, v in (message.headers() or [])],
            })
            seen = message.offset() + 1
    consumer.close()
    for record in out:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
