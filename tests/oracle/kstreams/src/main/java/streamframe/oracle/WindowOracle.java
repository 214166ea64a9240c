package streamframe.oracle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TopologyConfig;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Kafka Streams reference topology for streamframe's windowed count/sum with emit-final.
 *
 * <pre>
 * stream(input, String key, JSON value, event time = value[ts-field])
 *   .groupByKey()
 *   .windowedBy(TimeWindows.ofSizeAndGrace(size, grace)[.advanceBy(advance)]
 *               | SessionWindows.ofInactivityGapAndGrace(gap, grace)
 *               | SlidingWindows.ofTimeDifferenceAndGrace(size, grace))
 *   .aggregate(count, sum(value[sum-field]) as double)
 *   .suppress(Suppressed.untilWindowCloses(unbounded()))
 *   .toStream() -> {"key","window_start","window_end","count","sum"} -> output
 * </pre>
 *
 * It runs until every input record present at start-up has been consumed and its offset committed (the
 * app's consumer group offsets, polled with an Admin client), waits a short settle time, closes, prints one
 * summary line to stdout and exits 0 (2 on bad arguments, 1 on failure or time-out).
 */
public final class WindowOracle {

    private static final ObjectMapper JSON = new ObjectMapper();

    private WindowOracle() {}

    /** The aggregate: record count and double sum of the sum field. */
    static final class Agg {
        final long count;
        final double sum;

        Agg(final long count, final double sum) {
            this.count = count;
            this.sum = sum;
        }
    }

    static Serde<Agg> aggSerde() {
        final Serializer<Agg> ser = (topic, agg) ->
            agg == null ? null : ByteBuffer.allocate(16).putLong(agg.count).putDouble(agg.sum).array();
        final Deserializer<Agg> de = (topic, data) -> {
            if (data == null) {
                return null;
            }
            final ByteBuffer buf = ByteBuffer.wrap(data);
            return new Agg(buf.getLong(), buf.getDouble());
        };
        return Serdes.serdeFrom(ser, de);
    }

    static Serde<JsonNode> jsonSerde() {
        final Serializer<JsonNode> ser = (topic, node) -> {
            try {
                return node == null ? null : JSON.writeValueAsBytes(node);
            } catch (final Exception e) {
                throw new SerializationException("cannot write JSON", e);
            }
        };
        final Deserializer<JsonNode> de = (topic, data) -> {
            if (data == null) {
                return null;
            }
            try {
                return JSON.readTree(data);
            } catch (final Exception e) {
                throw new SerializationException("invalid JSON value", e);
            }
        };
        return Serdes.serdeFrom(ser, de);
    }

    /** Event time = the integral epoch-ms JSON field; anything else gives -1, which Kafka Streams skips. */
    static final class JsonFieldTimestampExtractor implements TimestampExtractor {
        private final String field;

        JsonFieldTimestampExtractor(final String field) {
            this.field = field;
        }

        @Override
        public long extract(final ConsumerRecord<Object, Object> record, final long partitionTime) {
            final Object value = record.value();
            if (!(value instanceof JsonNode)) {
                return -1L;
            }
            final JsonNode ts = ((JsonNode) value).get(field);
            if (ts == null || !ts.isNumber() || !ts.canConvertToLong()) {
                return -1L;
            }
            return ts.asLong();
        }
    }

    private static Map<String, String> parseArgs(final String[] args) {
        final Map<String, String> out = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            final String arg = args[i];
            if (!arg.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument: " + arg);
            }
            final int eq = arg.indexOf('=');
            if (eq > 0) {
                out.put(arg.substring(2, eq), arg.substring(eq + 1));
            } else {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("missing value for " + arg);
                }
                out.put(arg.substring(2), args[++i]);
            }
        }
        return out;
    }

    private static String required(final Map<String, String> a, final String name) {
        final String v = a.get(name);
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }

    private static long millis(final Map<String, String> a, final String name, final Long dflt) {
        final String v = a.get(name);
        if (v == null) {
            if (dflt == null) {
                throw new IllegalArgumentException("--" + name + " is required");
            }
            return dflt;
        }
        return Long.parseLong(v);
    }

    private static Agg add(final JsonNode value, final Agg agg, final String sumField) {
        final JsonNode v = value == null ? null : value.get(sumField);
        final double amount = v != null && v.isNumber() ? v.asDouble() : 0.0;
        return new Agg(agg.count + 1, agg.sum + amount);
    }

    private static String render(final Windowed<String> wk, final Agg agg) {
        final ObjectNode node = JSON.createObjectNode();
        node.put("key", wk.key());
        node.put("window_start", wk.window().start());
        node.put("window_end", wk.window().end());
        node.put("count", agg.count);
        node.put("sum", agg.sum);
        return node.toString();
    }

    public static void main(final String[] argv) {
        // slf4j-simple: WARN and above, to stderr (must be set before the first logger is created).
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        // Known, harmless start-up warnings (state dir under /tmp, unnamed internal resources, and the
        // GlobalThread processing-handler notice that the assignor's internal StreamsConfig copy repeats).
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.StreamsConfig", "error");
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.processor.internals.StateDirectory", "error");
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.processor.internals.InternalTopologyBuilder", "error");
        final Map<String, String> a;
        final String bootstrap;
        final String input;
        final String output;
        final String appId;
        final String window;
        final long sizeMs;
        final long advanceMs;
        final long gapMs;
        final long graceMs;
        final String tsField;
        final String sumField;
        final long settleMs;
        final long timeoutMs;
        try {
            a = parseArgs(argv);
            bootstrap = required(a, "bootstrap");
            input = required(a, "input");
            output = required(a, "output");
            appId = a.getOrDefault("app-id", "streamframe-oracle-" + UUID.randomUUID());
            window = required(a, "window");
            graceMs = millis(a, "grace-ms", 0L);
            tsField = a.getOrDefault("ts-field", "ts");
            sumField = a.getOrDefault("sum-field", "amount");
            settleMs = millis(a, "settle-ms", 2000L);
            timeoutMs = millis(a, "timeout-ms", 110_000L);
            switch (window) {
                case "tumbling":
                    sizeMs = millis(a, "size-ms", null);
                    advanceMs = sizeMs;
                    gapMs = -1;
                    break;
                case "hopping":
                    sizeMs = millis(a, "size-ms", null);
                    advanceMs = millis(a, "advance-ms", null);
                    gapMs = -1;
                    break;
                case "session":
                    gapMs = millis(a, "gap-ms", null);
                    sizeMs = -1;
                    advanceMs = -1;
                    break;
                case "sliding":
                    sizeMs = millis(a, "size-ms", null); // the time difference
                    advanceMs = -1;
                    gapMs = -1;
                    break;
                default:
                    throw new IllegalArgumentException(
                        "--window must be tumbling, hopping, session or sliding, got " + window);
            }
        } catch (final RuntimeException e) {
            System.err.println("WindowOracle: " + e.getMessage());
            System.exit(2);
            return;
        }

        final Path stateDir;
        try {
            stateDir = Files.createTempDirectory("streamframe-oracle-state-");
        } catch (final Exception e) {
            System.err.println("WindowOracle: cannot create a state dir: " + e);
            System.exit(1);
            return;
        }

        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueExceptionHandler.class);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_GLOBAL_ENABLED_CONFIG, true);

        final AtomicLong outputRecords = new AtomicLong();
        final Serde<Agg> aggSerde = aggSerde();
        final StreamsBuilder builder = new StreamsBuilder(new TopologyConfig(new StreamsConfig(props)));
        final KGroupedStream<String, JsonNode> grouped = builder
            .stream(input, Consumed.with(Serdes.String(), jsonSerde())
                .withTimestampExtractor(new JsonFieldTimestampExtractor(tsField)))
            .groupByKey(Grouped.with(Serdes.String(), jsonSerde()));

        final KTable<Windowed<String>, Agg> windowed;
        if (window.equals("session")) {
            windowed = grouped
                .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(gapMs), Duration.ofMillis(graceMs)))
                .aggregate(
                    () -> new Agg(0L, 0.0),
                    (k, v, agg) -> add(v, agg, sumField),
                    (k, left, right) -> new Agg(left.count + right.count, left.sum + right.sum),
                    Materialized.<String, Agg, SessionStore<Bytes, byte[]>>with(Serdes.String(), aggSerde)
                        .withLoggingDisabled());
        } else if (window.equals("sliding")) {
            windowed = grouped
                .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs)))
                .aggregate(
                    () -> new Agg(0L, 0.0),
                    (k, v, agg) -> add(v, agg, sumField),
                    Materialized.<String, Agg, WindowStore<Bytes, byte[]>>with(Serdes.String(), aggSerde)
                        .withLoggingDisabled());
        } else {
            TimeWindows tw = TimeWindows.ofSizeAndGrace(Duration.ofMillis(sizeMs), Duration.ofMillis(graceMs));
            if (window.equals("hopping")) {
                tw = tw.advanceBy(Duration.ofMillis(advanceMs));
            }
            windowed = grouped
                .windowedBy(tw)
                .aggregate(
                    () -> new Agg(0L, 0.0),
                    (k, v, agg) -> add(v, agg, sumField),
                    Materialized.<String, Agg, WindowStore<Bytes, byte[]>>with(Serdes.String(), aggSerde)
                        .withLoggingDisabled());
        }
        windowed
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded().withLoggingDisabled()))
            .toStream()
            .map((wk, agg) -> KeyValue.pair(wk.key(), render(wk, agg)))
            .peek((k, v) -> outputRecords.incrementAndGet())
            .to(output, Produced.with(Serdes.String(), Serdes.String()));

        final Properties adminProps = new Properties();
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);

        final long t0 = System.nanoTime();
        int rc = 0;
        long inputRecords = 0;
        long outputTopicRecords = -1;
        KafkaStreams streams = null;
        try (Admin admin = Admin.create(adminProps)) {
            // Offsets present at start: what we must consume before stopping.
            final TopicDescription desc = admin.describeTopics(List.of(input)).allTopicNames()
                .get(30, TimeUnit.SECONDS).get(input);
            final Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            final Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
            for (final TopicPartitionInfo p : desc.partitions()) {
                final TopicPartition tp = new TopicPartition(input, p.partition());
                latest.put(tp, OffsetSpec.latest());
                earliest.put(tp, OffsetSpec.earliest());
            }
            final Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends =
                admin.listOffsets(latest).all().get(30, TimeUnit.SECONDS);
            final Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> begins =
                admin.listOffsets(earliest).all().get(30, TimeUnit.SECONDS);
            for (final TopicPartition tp : ends.keySet()) {
                inputRecords += ends.get(tp).offset() - begins.get(tp).offset();
            }

            streams = new KafkaStreams(builder.build(), props);
            final KafkaStreams running = streams;
            streams.setUncaughtExceptionHandler(e -> {
                System.err.println("WindowOracle: stream thread failed: " + e);
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
            });
            streams.start();

            final long deadline = System.currentTimeMillis() + timeoutMs;
            boolean done = false;
            while (!done) {
                final KafkaStreams.State state = running.state();
                if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.NOT_RUNNING
                    || state == KafkaStreams.State.PENDING_ERROR || state == KafkaStreams.State.PENDING_SHUTDOWN) {
                    throw new IllegalStateException("Kafka Streams stopped unexpectedly (state " + state + ")");
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("input not consumed within " + timeoutMs + " ms");
                }
                if (state == KafkaStreams.State.RUNNING) {
                    final Map<TopicPartition, OffsetAndMetadata> committed = admin
                        .listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                    done = true;
                    for (final Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : ends.entrySet()) {
                        final long end = e.getValue().offset();
                        if (end <= begins.get(e.getKey()).offset()) {
                            continue; // empty partition: nothing to wait for
                        }
                        final OffsetAndMetadata c = committed.get(e.getKey());
                        if (c == null || c.offset() < end) {
                            done = false;
                            break;
                        }
                    }
                }
                if (!done) {
                    Thread.sleep(100);
                }
            }
            // Offsets are committed only after the producer is flushed, so output is complete by now;
            // the settle time is a margin for anything still in flight.
            Thread.sleep(settleMs);

            // Check that the output really is on the broker (what the driver will read).
            final long outputDeadline = System.currentTimeMillis() + 15_000;
            while (true) {
                outputTopicRecords = outputEndOffset(admin, output);
                if (outputTopicRecords >= outputRecords.get() || System.currentTimeMillis() > outputDeadline) {
                    break;
                }
                Thread.sleep(200);
            }
            if (outputTopicRecords < outputRecords.get()) {
                throw new IllegalStateException("output topic " + output + " holds " + outputTopicRecords
                    + " records but " + outputRecords.get() + " were produced");
            }
        } catch (final Exception e) {
            System.err.println("WindowOracle: " + e);
            rc = 1;
        }

        double dropped = 0.0;
        if (streams != null) {
            for (final Map.Entry<MetricName, ? extends Metric> m : streams.metrics().entrySet()) {
                final MetricName name = m.getKey();
                if (name.name().equals("dropped-records-total") && name.group().equals("stream-task-metrics")) {
                    final Object v = m.getValue().metricValue();
                    if (v instanceof Number) {
                        dropped += ((Number) v).doubleValue();
                    }
                }
            }
            if (!streams.close(Duration.ofSeconds(30))) {
                System.err.println("WindowOracle: Kafka Streams did not close within 30 s");
                rc = rc == 0 ? 1 : rc;
            }
        }
        deleteQuietly(stateDir.toFile());
        final long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        System.out.println("oracle window=" + window + " input_records=" + inputRecords
            + " output_records=" + outputRecords.get() + " output_topic_records=" + outputTopicRecords
            + " dropped_records=" + (long) dropped
            + " elapsed_ms=" + elapsedMs + " status=" + (rc == 0 ? "ok" : "failed"));
        System.out.flush();
        System.exit(rc);
    }

    private static long outputEndOffset(final Admin admin, final String topic) throws Exception {
        final TopicDescription desc = admin.describeTopics(List.of(topic)).allTopicNames()
            .get(30, TimeUnit.SECONDS).get(topic);
        final Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        for (final TopicPartitionInfo p : desc.partitions()) {
            latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest());
        }
        long total = 0;
        for (final ListOffsetsResult.ListOffsetsResultInfo info
                : admin.listOffsets(latest).all().get(30, TimeUnit.SECONDS).values()) {
            total += info.offset();
        }
        return total;
    }

    private static void deleteQuietly(final File root) {
        try (Stream<Path> walk = Files.walk(root.toPath())) {
            final List<Path> paths = new ArrayList<>();
            walk.forEach(paths::add);
            paths.sort(Comparator.reverseOrder());
            for (final Path p : paths) {
                Files.deleteIfExists(p);
            }
        } catch (final Exception ignored) {
            // best effort
        }
    }
}
