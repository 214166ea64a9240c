"""Protobuf message classes for tests, built from FileDescriptorProtos as protoc's Python output
would be (no protoc on these machines): `Order` with a nested `Line`, an enum, a repeated field and a
proto3 `optional` field; `Payment`, whose file imports another of ours and a well-known one; and
`OrderKey`, a message for record keys.

    syntax = "proto3";  package test.shop;
    message Order {
      enum Kind { KIND_UNSPECIFIED = 0; ONLINE = 1; STORE = 2; }
      message Line { string sku = 1; int32 count = 2; }
      int64 id = 1;  string customer = 2;  double amount = 3;  Kind kind = 4;
      repeated string tags = 5;  optional string note = 6;  Line first = 7;
    }
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

F = descriptor_pb2.FieldDescriptorProto


def _build():
    fd = descriptor_pb2.FileDescriptorProto(name="test_shop_order.proto", package="test.shop",
                                            syntax="proto3")
    order = fd.message_type.add(name="Order")
    kind = order.enum_type.add(name="Kind")
    for i, name in enumerate(["KIND_UNSPECIFIED", "ONLINE", "STORE"]):
        kind.value.add(name=name, number=i)
    line = order.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    line.field.add(name="count", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    order.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    order.field.add(name="customer", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    order.field.add(name="amount", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    order.field.add(name="kind", number=4, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                    type_name=".test.shop.Order.Kind")
    order.field.add(name="tags", number=5, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    order.oneof_decl.add(name="_note")  # proto3 `optional`: a synthetic oneof
    order.field.add(name="note", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0,
                    proto3_optional=True)
    order.field.add(name="first", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                    type_name=".test.shop.Order.Line")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.shop.Order"))


Order = _build()


def _build_imports():
    """    // test_shop_money.proto                 // test_shop_payment.proto
    syntax = "proto3"; package test.shop;       syntax = "proto3"; package test.shop;
    message Money {                             import "test_shop_money.proto";
      string currency = 1; int64 units = 2;     import "google/protobuf/timestamp.proto";
    }                                           message Payment {
                                                  int64 id = 1; Money amount = 2;
    // test_shop_key.proto                          google.protobuf.Timestamp at = 3;
    message OrderKey {                          }
      string region = 1; int64 id = 2;
    }
    """
    money = descriptor_pb2.FileDescriptorProto(name="test_shop_money.proto", package="test.shop",
                                               syntax="proto3")
    m = money.message_type.add(name="Money")
    m.field.add(name="currency", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    m.field.add(name="units", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    payment = descriptor_pb2.FileDescriptorProto(
        name="test_shop_payment.proto", package="test.shop", syntax="proto3",
        dependency=["test_shop_money.proto", "google/protobuf/timestamp.proto"])
    p = payment.message_type.add(name="Payment")
    p.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    p.field.add(name="amount", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                type_name=".test.shop.Money")
    p.field.add(name="at", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                type_name=".google.protobuf.Timestamp")
    key = descriptor_pb2.FileDescriptorProto(name="test_shop_key.proto", package="test.shop",
                                             syntax="proto3")
    k = key.message_type.add(name="OrderKey")
    k.field.add(name="region", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    k.field.add(name="id", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    for fd in (money, payment, key):
        pool.Add(fd)
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(f"test.shop.{name}"))
            for name in ("Payment", "OrderKey")]


Payment, OrderKey = _build_imports()


def payment_row(msg) -> dict:
    """A Payment as a row by the same rule: messages as dicts of their fields, None when unset."""
    return {
        "id": msg.id,
        "amount": {"currency": msg.amount.currency, "units": msg.amount.units} if msg.HasField("amount")
        else None,
        "at": {"seconds": msg.at.seconds, "nanos": msg.at.nanos} if msg.HasField("at") else None,
    }


def key_row(msg) -> dict:
    return {"region": msg.region, "id": msg.id}


def order_row(msg) -> dict:
    """A message as a row, by the rule the protobuf format documents: scalars as they are, an unset
    optional as None, enums by name, messages as dicts (None when unset), repeated fields as lists."""
    return {
        "id": msg.id, "customer": msg.customer, "amount": msg.amount,
        "kind": Order.Kind.Name(msg.kind), "tags": list(msg.tags),
        "note": msg.note if msg.HasField("note") else None,
        "first": ({"sku": msg.first.sku, "count": msg.first.count} if msg.HasField("first") else None),
    }
