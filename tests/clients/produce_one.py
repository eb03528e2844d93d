"""One acks=all record through librdkafka (confluent-kafka), and its fate.

produce_one.py BOOTSTRAP TOPIC VALUE TIMEOUT_MS
    Produces VALUE with acks=all (no idempotence, librdkafka's own retries),
    waits until it is delivered or fails for good (TIMEOUT_MS is both the
    request and the message timeout), and prints
    {"delivered": bool, "error": name or null, "offset": n}.
"""

import json
import sys

from confluent_kafka import Producer


def main(bootstrap, topic, value, timeout_ms):
    timeout_ms = int(timeout_ms)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "request.timeout.ms": timeout_ms,
            "message.timeout.ms": timeout_ms,
        }
    )
    result = {"delivered": False, "error": "no delivery report", "offset": -1}

    def report(err, msg):
        result["delivered"] = err is None
        result["error"] = None if err is None else err.name()
        result["offset"] = msg.offset() if err is None else -1

    producer.produce(topic, value=value.encode(), on_delivery=report)
    producer.flush(timeout_ms / 1000 + 30)
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5])
