package streamframe.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
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
 * says the input holds for it (--expected), as every benchmark app does (Bench).
 */
public final class FilterAssign {

    public static void main(String[] argv) throws Exception {
        Bench bench = new Bench(argv);
        long qtyAbove = bench.number("qty-above");
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(bench.arg("input"), Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .peek((key, value) -> bench.sawRecord())
                .mapValues(value -> (ObjectNode) Bench.read(value))
                .filter((key, trade) -> trade.get("qty").asLong() > qtyAbove)
                .mapValues(trade -> {
                    trade.put("notional", trade.get("qty").asLong() * trade.get("price").asDouble());
                    return Bench.write(trade);
                })
                .peek((key, value) -> bench.count())
                .to(bench.arg("output"), Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        bench.run(builder.build(), bench.props(), streams -> "");
    }
}
