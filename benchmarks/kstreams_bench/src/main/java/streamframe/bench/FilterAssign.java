package streamframe.bench;

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
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Benchmark workload 1 in Kafka Streams: keep trades with qty &gt; 100, add notional = qty * price, write
 * them (same key, same record timestamp) to the output topic.
 *
 * <pre>
 * stream(input, bytes key, bytes value)
 *   .mapValues(Jackson readTree) .filter(qty &gt; 100) .mapValues(put notional, Jackson bytes)
 *   .to(output)
 * </pre>
 *
 * Kafka Streams has no bounded run: the app stops once it has written the number of records the harness
 * says the input holds for it (--expected), by closing the streams instance, which flushes the producer
 * and commits. The time printed runs from building the topology to close() returning; the JVM's start is
 * not in it (as the Python contestants' imports are not in theirs). Prints one line,
 * "elapsed_s=... first_record_s=... close_s=... records_out=...", and exits 0; 1 on a time-out or failure.
 */
public final class FilterAssign {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        String bootstrap = args.get("bootstrap");
        String input = args.get("input");
        String output = args.get("output");
        long expected = Long.parseLong(args.get("expected"));
        long qtyAbove = Long.parseLong(args.getOrDefault("qty-above", "100"));
        int threads = Integer.parseInt(args.getOrDefault("threads", "1"));
        long timeoutMs = Long.parseLong(args.getOrDefault("timeout-ms", "300000"));

        long t0 = System.nanoTime();
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // The producer batching streamframe and the loop use (librdkafka: linger.ms 10, batches up to ~1 MB);
        // Java's own default batch is 16 KB.
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 10);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 1_000_000);

        CountDownLatch done = new CountDownLatch(1);
        AtomicLong written = new AtomicLong();
        AtomicLong firstRecord = new AtomicLong();
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .peek((key, value) -> firstRecord.compareAndSet(0, System.nanoTime()))
                .mapValues(FilterAssign::read)
                .filter((key, trade) -> trade.get("qty").asLong() > qtyAbove)
                .mapValues(trade -> {
                    trade.put("notional", trade.get("qty").asLong() * trade.get("price").asDouble());
                    return write(trade);
                })
                .peek((key, value) -> {
                    if (written.incrementAndGet() == expected) {
                        done.countDown();
                    }
                })
                .to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            done.countDown();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
        });
        streams.start();
        boolean finished = done.await(timeoutMs, TimeUnit.MILLISECONDS);
        long closing = System.nanoTime();
        streams.close(Duration.ofSeconds(60));
        long end = System.nanoTime();
        double elapsed = (end - t0) / 1e9;
        if (!finished || written.get() < expected) {
            System.err.printf("wrote %d of %d records%s%n", written.get(), expected, finished ? "" : " (timed out)");
            System.exit(1);
        }
        System.out.printf("elapsed_s=%.3f first_record_s=%.3f close_s=%.3f records_out=%d%n", elapsed,
                (firstRecord.get() - t0) / 1e9, (end - closing) / 1e9, written.get());
        System.exit(0);
    }

    private static ObjectNode read(byte[] value) {
        try {
            return (ObjectNode) JSON.readTree(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    private static byte[] write(ObjectNode value) {
        try {
            return JSON.writeValueAsBytes(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }
}
