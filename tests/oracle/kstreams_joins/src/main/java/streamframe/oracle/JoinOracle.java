package streamframe.oracle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TopologyConfig;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Kafka Streams reference topologies for streamframe's joins (driven by tests/oracle/joins.py).
 *
 * <pre>
 * --mode stream-table   stream(left).join / leftJoin(table(right), merge)                 -> output-prefix-{how}
 * --mode table-table    table(left).join / leftJoin / outerJoin(table(right), merge)     -> output-prefix-{how}
 * --mode fk             table(left).join / leftJoin(table(right), v -> v[fk-field], merge) -> output-prefix-{how}
 * --mode stream-stream  stream(left).join / leftJoin / outerJoin(stream(right), merge,
 *                           JoinWindows.ofTimeDifferenceAndGrace(within, grace))           -> output-prefix-{how}
 * </pre>
 *
 * Keys are strings, values JSON objects; event time is the record timestamp (the default extractor). Every
 * {@code --hows} entry gets its own join in the one topology, over the same sources. {@code merge} is the
 * value joiner: the left object's fields, then the right object's fields except {@code --right-drop}, a
 * right field whose name is a left field ({@code --left-fields}, or present in the left value) getting the
 * suffix {@code _right}; a missing side contributes nothing. Table outputs are the join's changelog
 * ({@code toStream()}): tombstones are null values; {@code --key-field} adds the record key to non-null
 * values. Stream outputs are the joined records, key and timestamp as Kafka Streams forwards them.
 *
 * <p>It runs until every input record present at start-up has been consumed and its offset committed, and
 * every internal topic (foreign-key subscription/response topics) is consumed to its end, waits a short
 * settle time, closes, prints one summary line to stdout and exits 0 (2 on bad arguments, 1 on failure).
 */
public final class JoinOracle {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> MODES = List.of("stream-table", "table-table", "fk", "stream-stream");

    private JoinOracle() {}

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

    /** The value joiner: left fields, then right fields (minus drop), clashing ones suffixed "_right". */
    static final class Merge implements ValueJoiner<JsonNode, JsonNode, JsonNode> {
        private final Set<String> leftFields;
        private final Set<String> rightDrop;

        Merge(final Set<String> leftFields, final Set<String> rightDrop) {
            this.leftFields = leftFields;
            this.rightDrop = rightDrop;
        }

        @Override
        public JsonNode apply(final JsonNode left, final JsonNode right) {
            final ObjectNode out = JSON.createObjectNode();
            final Set<String> clash = new HashSet<>(leftFields);
            if (left != null && left.isObject()) {
                final Iterator<Map.Entry<String, JsonNode>> it = left.fields();
                while (it.hasNext()) {
                    final Map.Entry<String, JsonNode> f = it.next();
                    out.set(f.getKey(), f.getValue());
                    clash.add(f.getKey());
                }
            }
            if (right != null && right.isObject()) {
                final Iterator<Map.Entry<String, JsonNode>> it = right.fields();
                while (it.hasNext()) {
                    final Map.Entry<String, JsonNode> f = it.next();
                    if (rightDrop.contains(f.getKey())) {
                        continue;
                    }
                    out.set(clash.contains(f.getKey()) ? f.getKey() + "_right" : f.getKey(), f.getValue());
                }
            }
            return out;
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

    private static Set<String> csv(final Map<String, String> a, final String name) {
        final String v = a.getOrDefault(name, "");
        return v.isEmpty() ? Set.of() : Arrays.stream(v.split(",")).map(String::trim)
            .filter(s -> !s.isEmpty()).collect(Collectors.toCollection(HashSet::new));
    }

    private static JsonNode withKey(final String keyField, final String key, final JsonNode value) {
        if (keyField == null || value == null || !value.isObject()) {
            return value;
        }
        final ObjectNode out = ((ObjectNode) value).deepCopy();
        out.put(keyField, key);
        return out;
    }

    /** The foreign key: the text of value[field], or null when absent/null (no match). */
    private static String foreignKey(final JsonNode value, final String field) {
        final JsonNode fk = value == null ? null : value.get(field);
        return fk == null || fk.isNull() ? null : fk.asText();
    }

    public static void main(final String[] argv) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.StreamsConfig", "error");
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.processor.internals.StateDirectory", "error");
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.processor.internals.InternalTopologyBuilder", "error");
        // Out-of-order table updates and null-key skips are expected in the tests; they are warnings.
        System.setProperty("org.slf4j.simpleLogger.log.org.apache.kafka.streams.kstream.internals", "error");
        final Map<String, String> a;
        final String bootstrap;
        final String mode;
        final String left;
        final String right;
        final String prefix;
        final String appId;
        final List<String> hows;
        final Set<String> leftFields;
        final Set<String> rightDrop;
        final String keyField;
        final String fkField;
        final long withinMs;
        final long graceMs;
        final long idleMs;
        final long settleMs;
        final long timeoutMs;
        try {
            a = parseArgs(argv);
            bootstrap = required(a, "bootstrap");
            mode = required(a, "mode");
            if (!MODES.contains(mode)) {
                throw new IllegalArgumentException("--mode must be one of " + MODES + ", got " + mode);
            }
            left = required(a, "left");
            right = required(a, "right");
            prefix = required(a, "output-prefix");
            appId = a.getOrDefault("app-id", "streamframe-join-oracle-" + UUID.randomUUID());
            hows = Arrays.asList(required(a, "hows").split(","));
            final List<String> allowed = mode.equals("stream-table") || mode.equals("fk")
                ? List.of("inner", "left") : List.of("inner", "left", "outer");
            for (final String how : hows) {
                if (!allowed.contains(how)) {
                    throw new IllegalArgumentException("--hows for " + mode + " are " + allowed + ", got " + how);
                }
            }
            leftFields = csv(a, "left-fields");
            rightDrop = csv(a, "right-drop");
            keyField = a.get("key-field");
            fkField = mode.equals("fk") ? required(a, "fk-field") : null;
            withinMs = mode.equals("stream-stream") ? Long.parseLong(required(a, "within-ms")) : -1;
            graceMs = Long.parseLong(a.getOrDefault("grace-ms", "0"));
            idleMs = Long.parseLong(a.getOrDefault("max-task-idle-ms", "2000"));
            settleMs = Long.parseLong(a.getOrDefault("settle-ms", "1000"));
            timeoutMs = Long.parseLong(a.getOrDefault("timeout-ms", "110000"));
        } catch (final RuntimeException e) {
            System.err.println("JoinOracle: " + e.getMessage());
            System.exit(2);
            return;
        }

        final Path stateDir;
        try {
            stateDir = Files.createTempDirectory("streamframe-join-oracle-state-");
        } catch (final Exception e) {
            System.err.println("JoinOracle: cannot create a state dir: " + e);
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
        // Wait (up to this long, wall-clock) for an empty input partition of a task before processing the
        // others: with all input on the broker this makes the task's merge the timestamp order
        // (PartitionGroup#readyToProcess; see tests/oracle/joins.py).
        props.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, idleMs);
        // Left/outer stream-stream joins emit non-joined records at most once per this wall-clock interval
        // (default 1000 ms); 0 makes the emission depend on the records only (see tests/oracle/joins.py).
        props.put("__emit.interval.ms.kstreams.outer.join.spurious.results.fix__", 0L);

        final Serde<JsonNode> json = jsonSerde();
        final Merge merge = new Merge(leftFields, rightDrop);
        final Map<String, AtomicLong> counts = new LinkedHashMap<>();
        for (final String how : hows) {
            counts.put(how, new AtomicLong());
        }
        final StreamsBuilder builder = new StreamsBuilder(new TopologyConfig(new StreamsConfig(props)));
        final Consumed<String, JsonNode> consumed = Consumed.with(Serdes.String(), json);
        final Produced<String, JsonNode> produced = Produced.with(Serdes.String(), json);

        if (mode.equals("stream-table") || mode.equals("stream-stream")) {
            final KStream<String, JsonNode> stream = builder.stream(left, consumed);
            if (mode.equals("stream-table")) {
                final KTable<String, JsonNode> table = builder.table(right, consumed,
                    Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(Serdes.String(), json)
                        .withLoggingDisabled());
                final Joined<String, JsonNode, JsonNode> joined = Joined.with(Serdes.String(), json, json);
                for (final String how : hows) {
                    final KStream<String, JsonNode> out = how.equals("inner")
                        ? stream.join(table, merge, joined) : stream.leftJoin(table, merge, joined);
                    final AtomicLong n = counts.get(how);
                    out.peek((k, v) -> n.incrementAndGet()).to(prefix + "-" + how, produced);
                }
            } else {
                final KStream<String, JsonNode> other = builder.stream(right, consumed);
                final JoinWindows windows =
                    JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(withinMs), Duration.ofMillis(graceMs));
                final StreamJoined<String, JsonNode, JsonNode> sj =
                    StreamJoined.<String, JsonNode, JsonNode>with(Serdes.String(), json, json).withLoggingDisabled();
                for (final String how : hows) {
                    final KStream<String, JsonNode> out;
                    switch (how) {
                        case "inner":
                            out = stream.join(other, merge, windows, sj);
                            break;
                        case "left":
                            out = stream.leftJoin(other, merge, windows, sj);
                            break;
                        default:
                            out = stream.outerJoin(other, merge, windows, sj);
                    }
                    final AtomicLong n = counts.get(how);
                    out.peek((k, v) -> n.incrementAndGet()).to(prefix + "-" + how, produced);
                }
            }
        } else {
            final KTable<String, JsonNode> lt = builder.table(left, consumed,
                Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(Serdes.String(), json)
                    .withLoggingDisabled());
            final KTable<String, JsonNode> rt = builder.table(right, consumed,
                Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(Serdes.String(), json)
                    .withLoggingDisabled());
            final Function<JsonNode, String> fk = v -> foreignKey(v, fkField);
            for (final String how : hows) {
                final KTable<String, JsonNode> out;
                if (mode.equals("fk")) {
                    out = how.equals("inner") ? lt.join(rt, fk, merge) : lt.leftJoin(rt, fk, merge);
                } else {
                    switch (how) {
                        case "inner":
                            out = lt.join(rt, merge);
                            break;
                        case "left":
                            out = lt.leftJoin(rt, merge);
                            break;
                        default:
                            out = lt.outerJoin(rt, merge);
                    }
                }
                final AtomicLong n = counts.get(how);
                out.toStream()
                    .mapValues((k, v) -> withKey(keyField, k, v))
                    .peek((k, v) -> n.incrementAndGet())
                    .to(prefix + "-" + how, produced);
            }
        }

        final Properties adminProps = new Properties();
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);

        final long t0 = System.nanoTime();
        int rc = 0;
        long inputRecords = 0;
        final Map<String, Long> onTopic = new LinkedHashMap<>();
        KafkaStreams streams = null;
        try (Admin admin = Admin.create(adminProps)) {
            // Offsets present at start: what must be consumed before stopping.
            final Map<TopicPartition, Long> inputEnds = new HashMap<>();
            final Map<TopicPartition, Long> inputBegins = new HashMap<>();
            for (final String topic : new HashSet<>(List.of(left, right))) {
                inputEnds.putAll(offsets(admin, topic, OffsetSpec.latest()));
                inputBegins.putAll(offsets(admin, topic, OffsetSpec.earliest()));
            }
            for (final TopicPartition tp : inputEnds.keySet()) {
                inputRecords += inputEnds.get(tp) - inputBegins.get(tp);
            }

            streams = new KafkaStreams(builder.build(), props);
            streams.setUncaughtExceptionHandler(e -> {
                System.err.println("JoinOracle: stream thread failed: " + e);
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
            });
            streams.start();

            final long deadline = System.currentTimeMillis() + timeoutMs;
            // Done = everything consumed and committed, twice in a row a settle time apart, with no new output.
            boolean quiet = false;
            long lastOutput = -1;
            while (true) {
                final KafkaStreams.State state = streams.state();
                if (state == KafkaStreams.State.ERROR || state == KafkaStreams.State.NOT_RUNNING
                    || state == KafkaStreams.State.PENDING_ERROR || state == KafkaStreams.State.PENDING_SHUTDOWN) {
                    throw new IllegalStateException("Kafka Streams stopped unexpectedly (state " + state + ")");
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("input not consumed within " + timeoutMs + " ms");
                }
                boolean done = state == KafkaStreams.State.RUNNING;
                if (done) {
                    final Map<TopicPartition, OffsetAndMetadata> committed = admin
                        .listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                    final Map<TopicPartition, Long> ends = new HashMap<>(inputEnds);
                    for (final String topic : internalTopics(admin, appId)) {
                        ends.putAll(offsets(admin, topic, OffsetSpec.latest()));
                    }
                    for (final Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
                        final long begin = inputBegins.getOrDefault(e.getKey(), 0L);
                        if (e.getValue() <= begin) {
                            continue; // empty partition: nothing to wait for
                        }
                        final OffsetAndMetadata c = committed.get(e.getKey());
                        if (c == null || c.offset() < e.getValue()) {
                            done = false;
                            break;
                        }
                    }
                }
                final long output = counts.values().stream().mapToLong(AtomicLong::get).sum();
                if (done && quiet && output == lastOutput) {
                    break;
                }
                quiet = done;
                lastOutput = output;
                Thread.sleep(done ? settleMs : 100);
            }

            // Check that the output really is on the broker (what the driver will read).
            final long outputDeadline = System.currentTimeMillis() + 15_000;
            for (final String how : hows) {
                final String topic = prefix + "-" + how;
                long end;
                while (true) {
                    end = offsets(admin, topic, OffsetSpec.latest()).values().stream().mapToLong(Long::longValue).sum();
                    if (end >= counts.get(how).get() || System.currentTimeMillis() > outputDeadline) {
                        break;
                    }
                    Thread.sleep(200);
                }
                onTopic.put(how, end);
                if (end < counts.get(how).get()) {
                    throw new IllegalStateException("output topic " + topic + " holds " + end
                        + " records but " + counts.get(how).get() + " were produced");
                }
            }
        } catch (final Exception e) {
            System.err.println("JoinOracle: " + e);
            rc = 1;
        }

        if (streams != null && !streams.close(Duration.ofSeconds(30))) {
            System.err.println("JoinOracle: Kafka Streams did not close within 30 s");
            rc = rc == 0 ? 1 : rc;
        }
        deleteQuietly(stateDir.toFile());
        final long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        final String outputs = counts.entrySet().stream()
            .map(e -> e.getKey() + ":" + e.getValue().get() + ":" + onTopic.getOrDefault(e.getKey(), -1L))
            .collect(Collectors.joining(","));
        System.out.println("oracle mode=" + mode + " input_records=" + inputRecords + " outputs=" + outputs
            + " elapsed_ms=" + elapsedMs + " status=" + (rc == 0 ? "ok" : "failed"));
        System.out.flush();
        System.exit(rc);
    }

    /** Internal topics the app reads (foreign-key subscription/response, repartition); not changelogs. */
    private static List<String> internalTopics(final Admin admin, final String appId) throws Exception {
        final List<String> out = new ArrayList<>();
        for (final String name : admin.listTopics().names().get(30, TimeUnit.SECONDS)) {
            if (name.startsWith(appId + "-") && !name.endsWith("-changelog")) {
                out.add(name);
            }
        }
        return out;
    }

    private static Map<TopicPartition, Long> offsets(final Admin admin, final String topic, final OffsetSpec spec)
            throws Exception {
        final TopicDescription desc = admin.describeTopics(List.of(topic)).allTopicNames()
            .get(30, TimeUnit.SECONDS).get(topic);
        final Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        for (final TopicPartitionInfo p : desc.partitions()) {
            request.put(new TopicPartition(topic, p.partition()), spec);
        }
        final Map<TopicPartition, Long> out = new HashMap<>();
        for (final Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e
                : admin.listOffsets(request).all().get(30, TimeUnit.SECONDS).entrySet()) {
            out.put(e.getKey(), e.getValue().offset());
        }
        return out;
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
