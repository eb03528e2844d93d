"""Numbered records for fault tests, with confluent-kafka (librdkafka).

produce BOOTSTRAP TOPIC PARTITIONS LOG STOP_FILE [RATE]
    Produces records with acks=all until STOP_FILE exists: record n goes to
    partition n % PARTITIONS with key "n" and value "v<n>". Every delivery
    report is one line of LOG, written as it arrives:
        ack <partition> <offset> <n> <unix ms>
        err <partition> <n> <error name> <unix ms>
    max.in.flight=1 keeps each partition's records in order across retries
    (a retried record may be written twice; that is a duplicate, not a loss).

read BOOTSTRAP TOPIC PARTITIONS OUT
    Reads every partition from the start to its high watermark and writes
    one line per record to OUT: <partition> <offset> <key> <value>.
"""

import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def now_ms():
    return int(time.time() * 1000)


def produce(bootstrap, topic, partitions, log_path, stop_file, rate):
    log = open(log_path, "w", buffering=1)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1,
            "retries": 1000000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500,
            "request.timeout.ms": 5000,
            "message.timeout.ms": 20000,
            "linger.ms": 2,
            "topic.metadata.refresh.interval.ms": 1000,
            "metadata.max.age.ms": 2000,
            "socket.connection.setup.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 500,
        }
    )

    def report(err, msg):
        n = int(msg.key())
        if err is None:
            log.write(f"ack {msg.partition()} {msg.offset()} {n} {now_ms()}\n")
        else:
            log.write(f"err {msg.partition()} {n} {err.name()} {now_ms()}\n")

    n = 0
    interval = 1.0 / rate
    next_send = time.time()
    while not os.path.exists(stop_file):
        try:
            producer.produce(
                topic,
                key=str(n).encode(),
                value=f"v{n}".encode(),
                partition=n % partitions,
                on_delivery=report,
            )
            n += 1
        except BufferError:
            producer.poll(0.05)
            continue
        producer.poll(0)
        next_send += interval
        pause = next_send - time.time()
        if pause > 0:
            time.sleep(pause)
        else:
            next_send = time.time()
    # Give outstanding records their chance (bounded by message.timeout.ms).
    producer.flush(30)
    log.write(f"sent {n} {now_ms()}\n")
    log.close()


def read(bootstrap, topic, partitions, out_path):
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"checker-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    ends = {}
    deadline = time.time() + 60
    for p in range(partitions):
        while True:
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=5
                )
                ends[p] = high
                break
            except KafkaException:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    done = {p for p in range(partitions) if ends[p] == 0}
    out = open(out_path, "w")
    while len(done) < partitions:
        if time.time() > deadline:
            raise SystemExit(f"reading timed out; done {sorted(done)} of {partitions}, ends {ends}")
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                if msg.offset() >= ends[msg.partition()]:
                    done.add(msg.partition())
                continue
            raise SystemExit(f"consume error: {msg.error()}")
        out.write(f"{msg.partition()} {msg.offset()} {msg.key().decode()} {msg.value().decode()}\n")
        if msg.offset() + 1 >= ends[msg.partition()]:
            done.add(msg.partition())
    out.close()
    consumer.close()


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "produce":
        rate = float(sys.argv[7]) if len(sys.argv) > 7 else 200.0
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], rate)
    elif command == "read":
        read(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(f"unknown command {command}")
