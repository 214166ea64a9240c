package streamframe.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * What the benchmark apps share: their options (--name value), their configuration, JSON by Jackson, and a
 * run that stops once `--expected` records have been counted, closes (state and outputs flushed, offsets
 * committed) and prints "elapsed_s=... first_record_s=... close_s=..." — timed from this object's creation,
 * so the JVM's start is not in it. Exits 0, or 1 on a time-out or a failure.
 */
final class Bench {

    static final ObjectMapper JSON = new ObjectMapper();
    static final Serde<JsonNode> JSON_SERDE = Serdes.serdeFrom((topic, node) -> write(node), (topic, bytes) -> read(bytes));

    final long t0 = System.nanoTime();
    final long expected;
    private final Map<String, String> args = new HashMap<>();
    private final CountDownLatch done = new CountDownLatch(1);
    private final AtomicLong counted = new AtomicLong();
    private final AtomicLong firstRecord = new AtomicLong();

    Bench(String[] argv) {
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        expected = number("expected");
    }

    String arg(String name) {
        return args.get(name);
    }

    long number(String name) {
        return Long.parseLong(args.get(name));
    }

    /** Kafka Streams' defaults but for the threads, reading from the beginning, and the producer batching
     *  streamframe and the loop use (librdkafka: linger.ms 10, batches up to ~1 MB; Java's own is 16 KB). */
    Properties props() {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, arg("app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, arg("bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, arg("state-dir"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args.getOrDefault("threads", "1")));
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 10);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 1_000_000);
        return props;
    }

    /** For a peek at the source: when the first record came. */
    void sawRecord() {
        firstRecord.compareAndSet(0, System.nanoTime());
    }

    /** For a peek where records are counted: the run stops at the expected count. */
    void count() {
        if (counted.incrementAndGet() == expected) {
            done.countDown();
        }
    }

    /** Start the topology, wait for the count, then `settle` (more to print, e.g. " late=3"), close, print. */
    void run(Topology topology, Properties props, Function<KafkaStreams, String> settle) throws InterruptedException {
        KafkaStreams streams = new KafkaStreams(topology, props);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            done.countDown();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        boolean finished = done.await(Long.parseLong(args.getOrDefault("timeout-ms", "600000")), TimeUnit.MILLISECONDS);
        String more = finished ? settle.apply(streams) : "";
        long closing = System.nanoTime();
        streams.close(Duration.ofSeconds(60));
        long end = System.nanoTime();
        if (!finished || counted.get() < expected) {
            System.err.printf("counted %d of %d records%s%n", counted.get(), expected, finished ? "" : " (timed out)");
            System.exit(1);
        }
        System.out.printf("elapsed_s=%.3f first_record_s=%.3f close_s=%.3f%s%n", (end - t0) / 1e9,
                (firstRecord.get() - t0) / 1e9, (end - closing) / 1e9, more);
        System.exit(0);
    }

    static JsonNode read(byte[] value) {
        try {
            return value == null ? null : JSON.readTree(value);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] write(Object value) {
        try {
            return value == null ? null : JSON.writeValueAsBytes(value);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
