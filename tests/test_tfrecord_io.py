"""Our hand-written tf.train.Example codec and TFRecord framing, checked against protobuf itself."""
import struct

import numpy as np
import pytest

from diffmoog.data import tfrecord_io
from diffmoog.data.tf_example import encode_example, parse_example

FEATURES = {"text": ([b"x", b"", b"\xff\x00yz"], "byte"), "audio": (np.linspace(-1, 1, 1001, dtype=np.float32), "float"),
            "ints": ([-1, 0, 5, 2 ** 40, -(2 ** 63)], "int"), "one_float": (3.5, "float"), "one_int": (-7, "int"),
            "no_ints": ([], "int"), "no_bytes": ([], "byte"), "no_floats": ([], "float"), "name": ("é".encode(), "byte")}


def protobuf_example_class():
    """tensorflow.Example built in a private descriptor pool (no clash with TensorFlow's own)."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2", reason="protobuf is not installed")
    from google.protobuf import descriptor_pool, message_factory
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="private_example.proto", package="tensorflow", syntax="proto3")

    def message(name, *fields, oneof=None):
        msg = proto.message_type.add(name=name)
        if oneof:
            msg.oneof_decl.add(name=oneof)
        for number, field_name, kind, label, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
            if oneof:
                field.oneof_index = 0
        return msg

    rep, opt = f.LABEL_REPEATED, f.LABEL_OPTIONAL
    message("BytesList", (1, "value", f.TYPE_BYTES, rep, None))
    message("FloatList", (1, "value", f.TYPE_FLOAT, rep, None))
    message("Int64List", (1, "value", f.TYPE_INT64, rep, None))
    message("Feature", (1, "bytes_list", f.TYPE_MESSAGE, opt, ".tensorflow.BytesList"),
            (2, "float_list", f.TYPE_MESSAGE, opt, ".tensorflow.FloatList"),
            (3, "int64_list", f.TYPE_MESSAGE, opt, ".tensorflow.Int64List"), oneof="kind")
    features = message("Features", (1, "feature", f.TYPE_MESSAGE, rep, ".tensorflow.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=f.TYPE_STRING, label=opt)
    entry.field.add(name="value", number=2, type=f.TYPE_MESSAGE, label=opt, type_name=".tensorflow.Feature")
    message("Example", (1, "features", f.TYPE_MESSAGE, opt, ".tensorflow.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def assert_same(decoded, features):
    for name, (value, kind) in features.items():
        expected = value if isinstance(value, (list, np.ndarray)) else [value]
        if kind == "byte":
            assert decoded[name] == list(expected), name
        else:
            assert np.array_equal(decoded[name], np.asarray(expected, dtype=np.float32 if kind == "float" else np.int64))
            assert decoded[name].dtype == (np.float32 if kind == "float" else np.int64)


def test_round_trip():
    assert_same(parse_example(encode_example(FEATURES)), FEATURES)


def test_protobuf_agrees_both_ways():
    Example = protobuf_example_class()
    parsed = Example.FromString(encode_example(FEATURES))
    assert list(parsed.features.feature["ints"].int64_list.value) == FEATURES["ints"][0]
    assert parsed.features.feature["no_floats"].WhichOneof("kind") == "float_list"
    assert np.array_equal(np.asarray(parsed.features.feature["audio"].float_list.value, np.float32), FEATURES["audio"][0])
    # protobuf's own serialization (packed lists, its own map order) decodes to the same values.
    assert_same(parse_example(parsed.SerializeToString()), FEATURES)

def test_unpacked_repeated_values_decode():
    # Writers may emit repeated scalars unpacked (one tagged value each); parsers must accept both.
    def field(number, payload):
        return bytes([number << 3 | 2, len(payload)]) + payload
    floats = field(2, b"\x0d" + struct.pack("<f", 1.25) + b"\x0d" + struct.pack("<f", -2.0))
    ints = field(3, b"\x08\x05\x08\x07")
    entries = field(1, field(1, b"f") + field(2, floats)) + field(1, field(1, b"i") + field(2, ints))
    decoded = parse_example(field(1, entries))
    assert decoded["f"].tolist() == [1.25, -2.0] and decoded["i"].tolist() == [5, 7]


def test_framing_checksums_and_cut_files(tmp_path):
    path = tmp_path / "x.tfrecord"
    tfrecord_io.write_examples(path, [FEATURES, {"only": (1, "int")}])
    offsets, cut = tfrecord_io.record_offsets(path)
    assert len(offsets) == 2 and not cut
    assert parse_example(tfrecord_io.read_payload(path, *offsets[1]))["only"].tolist() == [1]
    length_bytes = path.read_bytes()[:8]
    assert struct.unpack("<I", path.read_bytes()[8:12])[0] == tfrecord_io.masked_crc(length_bytes)
    data = bytearray(path.read_bytes())
    data[offsets[0][0] + 10] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match="checksum"):
        tfrecord_io.read_payload(path, *offsets[0])
    path.write_bytes(bytes(data[:-3]))
    offsets, cut = tfrecord_io.record_offsets(path)
    assert len(offsets) == 1 and cut


def test_garbage_is_an_error_not_a_hang():
    for junk in (b"\xff" * 40, b"\x0a\xff\xff\xff\xff\x0f", b"\x0b\x01"):
        with pytest.raises((ValueError, IndexError)):
            parse_example(junk)
