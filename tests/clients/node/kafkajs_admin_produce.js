// KafkaJS (pure JavaScript client): CreateTopics, Metadata, Produce (gzip, headers,
// acks=-1), ListOffsets (latest, by timestamp), DeleteTopics. Prints a JSON summary.
// Usage: node kafkajs_admin_produce.js BOOTSTRAP TOPIC COUNT
const { Kafka, logLevel, CompressionTypes, Partitioners } = require('kafkajs');

async function main() {
  const [bootstrap, topic, countText] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({ clientId: 'strom-e2e', brokers: [bootstrap], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const before = Date.now() - 1000;
  const sent = await producer.send({
    topic,
    acks: -1,
    compression: CompressionTypes.GZIP,
    messages: Array.from({ length: count }, (_, i) => ({
      partition: i % 3, key: `k${i}`, value: `v${i}`, headers: { seq: String(i) },
    })),
  });
  const offsets = await admin.fetchTopicOffsets(topic);
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, before);
  await producer.disconnect();
  const listedBefore = await admin.listTopics();
  await admin.disconnect();
  console.log(JSON.stringify({
    created, again, listed: listedBefore.includes(topic),
    partitions: metadata.topics[0].partitions.length,
    sent_errors: sent.filter((r) => r.errorCode !== 0).length,
    high: offsets.map((o) => Number(o.high)).reduce((a, b) => a + b, 0),
    by_time: byTime.map((o) => Number(o.offset)),
  }));
}

main().catch((err) => { console.error('FAILED', err); process.exit(1); });
