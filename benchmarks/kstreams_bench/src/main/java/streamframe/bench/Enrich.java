package streamframe.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Properties;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
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
 * It stops once it has written one record per order (--expected), as every benchmark app does (Bench).
 */
public final class Enrich {

    private static final String[] FIELDS = {"name", "segment", "tier", "credit"};

    public static void main(String[] argv) throws Exception {
        Bench bench = new Bench(argv);
        Properties props = bench.props();
        // The table's topic is its changelog (no copy of it is written).
        props.put(StreamsConfig.TOPOLOGY_OPTIMIZATION_CONFIG, StreamsConfig.OPTIMIZE);
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, JsonNode> customers = builder.table(bench.arg("table"),
                Consumed.with(Serdes.String(), Bench.JSON_SERDE));
        builder.stream(bench.arg("stream"), Consumed.with(Serdes.String(), Bench.JSON_SERDE))
                .peek((key, value) -> bench.sawRecord())
                .leftJoin(customers, (order, customer) -> {
                    ObjectNode out = ((ObjectNode) order).deepCopy();
                    for (String field : FIELDS) {
                        out.set(field, customer == null ? null : customer.get(field));
                    }
                    return (JsonNode) out;
                })
                .peek((key, value) -> bench.count())
                .to(bench.arg("output"), Produced.with(Serdes.String(), Bench.JSON_SERDE));
        bench.run(builder.build(props), props, streams -> "");
    }
}
