package streamframe.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * Benchmark workload 2 in Kafka Streams: a tumbling-window count and sum of qty per key, event time from
 * the payload's "ts", final results only.
 *
 * <pre>
 * stream(input, String key, Jackson value, event time = value.ts)
 *   .groupByKey() .windowedBy(TimeWindows.ofSizeAndGrace(size, grace))
 *   .aggregate(count, sum(qty))          -- the default store: RocksDB, logged to a changelog topic
 *   .suppress(untilWindowCloses(unbounded())) .toStream()
 *   -> key {"_key","window_start"}, value {"window_start","window_end","n","total"} -> output
 * </pre>
 *
 * As FilterAssign: it stops once it has read the number of input records the harness gives (--expected),
 * by closing the streams instance (state flushed, outputs flushed, offsets committed), and prints
 * "elapsed_s=... first_record_s=... close_s=... late=..." (late: the tasks' dropped-records-total).
 */
public final class WindowedCountSum {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Event time from the value's "ts" (the value is deserialized once, by the source's serde). */
    static final class TsExtractor implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            JsonNode ts = ((JsonNode) record.value()).get("ts");
            return ts == null ? -1L : ts.asLong(-1L);
        }
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        long expected = Long.parseLong(args.get("expected"));
        long sizeMs = Long.parseLong(args.get("size-ms"));
        long graceMs = Long.parseLong(args.get("grace-ms"));
        long timeoutMs = Long.parseLong(args.getOrDefault("timeout-ms", "600000"));

        long t0 = System.nanoTime();
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args.getOrDefault("threads", "1")));
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 10);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 1_000_000);

        Serde<JsonNode> json = Serdes.serdeFrom(
                (topic, node) -> write(node),
                (topic, bytes) -> read(bytes));
        // The aggregate: count and sum, 16 bytes.
        Serde<long[]> agg = Serdes.serdeFrom(
                (topic, a) -> ByteBuffer.allocate(16).putLong(a[0]).putLong(a[1]).array(),
                (topic, b) -> {
                    ByteBuffer buf = ByteBuffer.wrap(b);
                    return new long[] {buf.getLong(), buf.getLong()};
                });

        CountDownLatch done = new CountDownLatch(1);
        AtomicLong read = new AtomicLong();
        AtomicLong firstRecord = new AtomicLong();
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(args.get("input"), Consumed.with(Serdes.String(), json).withTimestampExtractor(new TsExtractor()))
                .peek((key, value) -> {
                    firstRecord.compareAndSet(0, System.nanoTime());
                    if (read.incrementAndGet() == expected) {
                        done.countDown();  // this record is aggregated before the thread looks at close()
                    }
                })
                .groupByKey(Grouped.with(Serdes.String(), json))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs)))
                .aggregate(() -> new long[] {0L, 0L},
                        (key, value, a) -> new long[] {a[0] + 1, a[1] + value.get("qty").asLong()},
                        Materialized.with(Serdes.String(), agg))
                .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                .toStream()
                .map((windowed, a) -> {
                    long start = windowed.window().start();
                    Map<String, Object> key = new java.util.LinkedHashMap<>();
                    key.put("_key", windowed.key());
                    key.put("window_start", start);
                    Map<String, Object> value = new java.util.LinkedHashMap<>();
                    value.put("window_start", start);
                    value.put("window_end", windowed.window().end());
                    value.put("n", a[0]);
                    value.put("total", a[1]);
                    return KeyValue.pair(writeObject(key), writeObject(value));
                })
                .to(args.get("output"), Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            done.countDown();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        boolean finished = done.await(timeoutMs, TimeUnit.MILLISECONDS);
        // The last record has been read; the late count is final once the threads have processed it.
        long settle = System.nanoTime() + 10_000_000_000L;
        while (finished && total(streams, "stream-thread-metrics", "process-total") < expected
                && System.nanoTime() < settle) {
            Thread.sleep(1);
        }
        double late = total(streams, "stream-task-metrics", "dropped-records-total");
        long closing = System.nanoTime();
        streams.close(Duration.ofSeconds(60));
        long end = System.nanoTime();
        if (!finished || read.get() < expected) {
            System.err.printf("read %d of %d records%s%n", read.get(), expected, finished ? "" : " (timed out)");
            System.exit(1);
        }
        System.out.printf("elapsed_s=%.3f first_record_s=%.3f close_s=%.3f late=%d%n", (end - t0) / 1e9,
                (firstRecord.get() - t0) / 1e9, (end - closing) / 1e9, (long) late);
        System.exit(0);
    }

    private static double total(KafkaStreams streams, String group, String metric) {
        double sum = 0;
        for (Map.Entry<MetricName, ? extends Metric> m : streams.metrics().entrySet()) {
            if (m.getKey().name().equals(metric) && m.getKey().group().equals(group)) {
                sum += ((Number) m.getValue().metricValue()).doubleValue();
            }
        }
        return sum;
    }

    private static JsonNode read(byte[] value) {
        try {
            return JSON.readTree(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    private static byte[] write(JsonNode value) {
        return writeObject(value);
    }

    private static byte[] writeObject(Object value) {
        try {
            return JSON.writeValueAsBytes(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }
}
