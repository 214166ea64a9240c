package streamframe.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
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
 * It stops once it has read the number of input records the harness gives (--expected), as every benchmark
 * app does (Bench), and prints " late=..." besides: the tasks' dropped-records-total.
 */
public final class WindowedCountSum {

    /** Event time from the value's "ts" (the value is deserialized once, by the source's serde). */
    static final class TsExtractor implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            JsonNode ts = ((JsonNode) record.value()).get("ts");
            return ts == null ? -1L : ts.asLong(-1L);
        }
    }

    public static void main(String[] argv) throws Exception {
        Bench bench = new Bench(argv);
        long sizeMs = bench.number("size-ms");
        long graceMs = bench.number("grace-ms");
        // The aggregate: count and sum, 16 bytes.
        Serde<long[]> agg = Serdes.serdeFrom(
                (topic, a) -> ByteBuffer.allocate(16).putLong(a[0]).putLong(a[1]).array(),
                (topic, b) -> {
                    ByteBuffer buf = ByteBuffer.wrap(b);
                    return new long[] {buf.getLong(), buf.getLong()};
                });

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(bench.arg("input"),
                        Consumed.with(Serdes.String(), Bench.JSON_SERDE).withTimestampExtractor(new TsExtractor()))
                .peek((key, value) -> {
                    bench.sawRecord();
                    bench.count();  // this record is aggregated before the thread looks at close()
                })
                .groupByKey(Grouped.with(Serdes.String(), Bench.JSON_SERDE))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs)))
                .aggregate(() -> new long[] {0L, 0L},
                        (key, value, a) -> new long[] {a[0] + 1, a[1] + value.get("qty").asLong()},
                        Materialized.with(Serdes.String(), agg))
                .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                .toStream()
                .map((windowed, a) -> {
                    long start = windowed.window().start();
                    Map<String, Object> key = new LinkedHashMap<>();
                    key.put("_key", windowed.key());
                    key.put("window_start", start);
                    Map<String, Object> value = new LinkedHashMap<>();
                    value.put("window_start", start);
                    value.put("window_end", windowed.window().end());
                    value.put("n", a[0]);
                    value.put("total", a[1]);
                    return KeyValue.pair(Bench.write(key), Bench.write(value));
                })
                .to(bench.arg("output"), Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));

        bench.run(builder.build(), bench.props(), streams -> {
            // Every record has been read; the late count is final once the threads have processed it.
            long settle = System.nanoTime() + 10_000_000_000L;
            while (total(streams, "stream-thread-metrics", "process-total") < bench.expected
                    && System.nanoTime() < settle) {
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    break;
                }
            }
            return String.format(" late=%d", (long) total(streams, "stream-task-metrics", "dropped-records-total"));
        });
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
}
