package streamframe.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Benchmark workload 3 in Kafka Streams: each order enriched with its customer's fields, a KStream-KTable
 * left join on the record key (both topics keyed by the customer id, co-partitioned).
 *
 * <pre>
 * table(customers, String key, Jackson value)       -- its default store: RocksDB, the topic as changelog
 * stream(orders, String key, Jackson value)
 *   .leftJoin(table, order + {name, segment, tier, credit} (null when the customer is missing))
 *   .to(output)
 * </pre>
 *
 * As FilterAssign: it stops once it has written one record per order (--expected), by closing the streams
 * instance, and prints "elapsed_s=... first_record_s=... close_s=...".
 */
public final class Enrich {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] FIELDS = {"name", "segment", "tier", "credit"};

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        long expected = Long.parseLong(args.get("expected"));
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
        // The table's topic is its changelog (no copy of it is written).
        props.put(StreamsConfig.TOPOLOGY_OPTIMIZATION_CONFIG, StreamsConfig.OPTIMIZE);

        Serde<JsonNode> json = Serdes.serdeFrom((topic, node) -> write(node), (topic, bytes) -> read(bytes));
        CountDownLatch done = new CountDownLatch(1);
        AtomicLong written = new AtomicLong();
        AtomicLong firstRecord = new AtomicLong();
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, JsonNode> customers = builder.table(args.get("table"), Consumed.with(Serdes.String(), json));
        builder.stream(args.get("stream"), Consumed.with(Serdes.String(), json))
                .peek((key, value) -> firstRecord.compareAndSet(0, System.nanoTime()))
                .leftJoin(customers, (order, customer) -> {
                    ObjectNode out = ((ObjectNode) order).deepCopy();
                    for (String field : FIELDS) {
                        out.set(field, customer == null ? null : customer.get(field));
                    }
                    return (JsonNode) out;
                })
                .peek((key, value) -> {
                    if (written.incrementAndGet() == expected) {
                        done.countDown();
                    }
                })
                .to(args.get("output"), Produced.with(Serdes.String(), json));

        KafkaStreams streams = new KafkaStreams(builder.build(props), props);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            done.countDown();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        boolean finished = done.await(timeoutMs, TimeUnit.MILLISECONDS);
        long closing = System.nanoTime();
        streams.close(Duration.ofSeconds(60));
        long end = System.nanoTime();
        if (!finished || written.get() < expected) {
            System.err.printf("wrote %d of %d records%s%n", written.get(), expected, finished ? "" : " (timed out)");
            System.exit(1);
        }
        System.out.printf("elapsed_s=%.3f first_record_s=%.3f close_s=%.3f%n", (end - t0) / 1e9,
                (firstRecord.get() - t0) / 1e9, (end - closing) / 1e9);
        System.exit(0);
    }

    private static JsonNode read(byte[] value) {
        try {
            return value == null ? null : JSON.readTree(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    private static byte[] write(JsonNode value) {
        try {
            return value == null ? null : JSON.writeValueAsBytes(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }
}
