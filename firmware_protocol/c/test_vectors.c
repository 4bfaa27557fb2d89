/*
 * Checks the C encoder and CONTROL decoder against vectors/vectors.json (the schema is in
 * firmware_protocol/README.md), plus CRC, COBS and argument checks the vectors cannot express.
 *
 *   test_vectors PATH/TO/vectors.json
 *
 * Prints one FAIL line per failed check and ends with `N passed, M failed`; exits 1 on any failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "biofeed_proto.h"
#include "json_reader.h"
#include "test_tally.h"

#define SCHEMA "biofeed-protocol-vectors/1"
/* The most sample values one payload can hold: 1024 bytes of int16. */
#define MAX_VALUES (BF_MAX_PAYLOAD_BYTES / 2u)

/* --- strict schema reading --------------------------------------------------------------- */

/* Where we are in the document and the first schema error found there. */
typedef struct schema {
    const char *where;
    char error[300];
    int failed;
} schema;

static void schema_fail(schema *s, const char *format, ...)
{
    va_list args;
    int n;
    if (s->failed) {
        return;
    }
    s->failed = 1;
    n = snprintf(s->error, sizeof s->error, "%s: ", s->where);
    va_start(args, format);
    vsnprintf(s->error + n, sizeof s->error - (size_t)n, format, args);
    va_end(args);
}

/* Every member of object is one of keys, and every key is present. */
static void expect_keys(schema *s, const json_value *object, const char *const *keys, size_t n_keys)
{
    size_t i, k;
    if (object->kind != JSON_OBJECT) {
        schema_fail(s, "expected an object");
        return;
    }
    for (i = 0; i < object->n_items; ++i) {
        for (k = 0; k < n_keys && strcmp(object->keys[i], keys[k]) != 0; ++k) {
        }
        if (k == n_keys) {
            schema_fail(s, "unexpected member \"%s\"", object->keys[i]);
        }
    }
    for (k = 0; k < n_keys; ++k) {
        if (json_member(object, keys[k]) == NULL) {
            schema_fail(s, "missing member \"%s\"", keys[k]);
        }
    }
}

static const json_value *member(schema *s, const json_value *object, const char *key, json_kind kind)
{
    const json_value *value = json_member(object, key);
    if (value == NULL || value->kind != kind) {
        schema_fail(s, "\"%s\" missing or of the wrong type", key);
        return NULL;
    }
    return value;
}

static long long integer_of(schema *s, const json_value *value, const char *what, long long lowest,
                            long long highest)
{
    char *end;
    long long number;
    if (value == NULL || value->kind != JSON_NUMBER) {
        schema_fail(s, "%s is not a number", what);
        return lowest;
    }
    number = strtoll(value->text, &end, 10);
    if (*end != '\0' || number < lowest || number > highest) {
        schema_fail(s, "%s must be an integer %lld..%lld, got %s", what, lowest, highest, value->text);
        return lowest;
    }
    return number;
}

static long long integer_member(schema *s, const json_value *object, const char *key, long long lowest,
                                long long highest)
{
    const json_value *value = member(s, object, key, JSON_NUMBER);
    return value == NULL ? lowest : integer_of(s, value, key, lowest, highest);
}

static const char *string_member(schema *s, const json_value *object, const char *key)
{
    const json_value *value = member(s, object, key, JSON_STRING);
    if (value == NULL) {
        return "";
    }
    if (strlen(value->text) != value->text_length) {
        schema_fail(s, "\"%s\" holds a NUL character", key);
    }
    return value->text;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Lower-case hex string member into bytes; returns the byte count. */
static size_t hex_member(schema *s, const json_value *object, const char *key, uint8_t *out, size_t capacity)
{
    const char *text = string_member(s, object, key);
    size_t length = strlen(text), i;
    if (length % 2 != 0 || length / 2 > capacity) {
        schema_fail(s, "\"%s\" is not hex of at most %lu bytes", key, (unsigned long)capacity);
        return 0;
    }
    for (i = 0; i < length / 2; ++i) {
        int high = hex_digit(text[2 * i]), low = hex_digit(text[2 * i + 1]);
        if (high < 0 || low < 0) {
            schema_fail(s, "\"%s\" is not lower-case hex", key);
            return 0;
        }
        out[i] = (uint8_t)(high * 16 + low);
    }
    return length / 2;
}

static int name_index(schema *s, const char *text, const char *const *names, size_t n_names, const char *what)
{
    size_t i;
    for (i = 0; i < n_names; ++i) {
        if (strcmp(text, names[i]) == 0) {
            return (int)i;
        }
    }
    schema_fail(s, "unknown %s \"%s\"", what, text);
    return 0;
}

static const char *const format_names[] = {"int16", "int24"};
static const char *const kind_names[] = {"emg", "acc", "gyro", "mag", "quat", "angle"};
static const char *const command_names[] = {"START", "STOP", "REQUEST_INFO", "SET_RATE"};

/* --- one valid vector -------------------------------------------------------------------- */

typedef struct valid_vector {
    const char *name;
    bf_header header;
    /* INFO */
    bf_device_info info;
    bf_stream_info streams[BF_MAX_STREAMS];
    bf_channel_info channels[BF_MAX_STREAMS][BF_MAX_CHANNELS];
    /* EMG, IMU */
    bf_sample_format format;
    int32_t counts[MAX_VALUES]; /* sample-major */
    size_t n_channels;
    size_t n_samples;
    /* STATUS */
    bf_status_info status;
    /* MARKER */
    uint8_t marker_code;
    const char *label;
    /* CONTROL */
    uint8_t command;
    uint32_t sample_rate_mhz;
    /* other types */
    uint8_t raw[BF_MAX_PAYLOAD_BYTES];
    size_t raw_length;
    /* expected bytes */
    uint8_t packet[BF_MAX_PACKET_BYTES];
    size_t packet_length;
    uint8_t frame[BF_MAX_FRAME_BYTES];
    size_t frame_length;
} valid_vector;

static void read_info(schema *s, const json_value *payload, valid_vector *v)
{
    static const char *const keys[] = {"firmware_version", "device_id", "board_profile", "streams"};
    static const char *const stream_keys[] = {"stream_id", "name", "sample_format", "sample_rate_mhz", "channels"};
    static const char *const channel_keys[] = {"kind", "scale", "name", "site"};
    const json_value *version, *streams;
    size_t i, c;

    expect_keys(s, payload, keys, 4);
    version = member(s, payload, "firmware_version", JSON_ARRAY);
    streams = member(s, payload, "streams", JSON_ARRAY);
    if (s->failed) {
        return;
    }
    if (version->n_items != 3 || streams->n_items < 1 || streams->n_items > BF_MAX_STREAMS) {
        schema_fail(s, "firmware_version needs 3 numbers and streams 1..8 entries");
        return;
    }
    for (i = 0; i < 3; ++i) {
        v->info.firmware_version[i] = (uint8_t)integer_of(s, &version->items[i], "firmware_version", 0, 255);
    }
    v->info.device_id = string_member(s, payload, "device_id");
    v->info.board_profile = string_member(s, payload, "board_profile");
    v->info.n_streams = (uint8_t)streams->n_items;
    v->info.streams = v->streams;
    for (i = 0; i < streams->n_items && !s->failed; ++i) {
        const json_value *stream = &streams->items[i];
        const json_value *channels;
        bf_stream_info *out = &v->streams[i];
        expect_keys(s, stream, stream_keys, 5);
        channels = member(s, stream, "channels", JSON_ARRAY);
        if (s->failed) {
            return;
        }
        if (channels->n_items < 1 || channels->n_items > BF_MAX_CHANNELS) {
            schema_fail(s, "a stream needs 1..16 channels");
            return;
        }
        out->stream_id = (uint8_t)integer_member(s, stream, "stream_id", 1, 255);
        out->name = string_member(s, stream, "name");
        out->sample_format = (uint8_t)(1 + name_index(s, string_member(s, stream, "sample_format"), format_names, 2,
                                                      "sample_format"));
        out->sample_rate_mhz = (uint32_t)integer_member(s, stream, "sample_rate_mhz", 1, 4294967295LL);
        out->n_channels = (uint8_t)channels->n_items;
        out->channels = v->channels[i];
        for (c = 0; c < channels->n_items && !s->failed; ++c) {
            const json_value *channel = &channels->items[c];
            const json_value *scale;
            bf_channel_info *channel_out = &v->channels[i][c];
            expect_keys(s, channel, channel_keys, 4);
            scale = member(s, channel, "scale", JSON_NUMBER);
            if (s->failed) {
                return;
            }
            channel_out->kind = (uint8_t)(1 + name_index(s, string_member(s, channel, "kind"), kind_names, 6, "kind"));
            /* Decimal -> double -> float32, the same rounding Python's struct.pack("<f") makes. */
            channel_out->scale = (float)strtod(scale->text, NULL);
            channel_out->name = string_member(s, channel, "name");
            channel_out->site = string_member(s, channel, "site");
        }
    }
}

static void read_samples(schema *s, const json_value *payload, valid_vector *v)
{
    static const char *const keys[] = {"sample_format", "counts"};
    const json_value *rows;
    long long lowest, highest;
    size_t c, k;

    expect_keys(s, payload, keys, 2);
    rows = member(s, payload, "counts", JSON_ARRAY);
    if (s->failed) {
        return;
    }
    v->format = name_index(s, string_member(s, payload, "sample_format"), format_names, 2, "sample_format") == 0
                    ? BF_FORMAT_INT16
                    : BF_FORMAT_INT24;
    lowest = v->format == BF_FORMAT_INT16 ? -32768 : -8388608;
    highest = v->format == BF_FORMAT_INT16 ? 32767 : 8388607;
    v->n_channels = rows->n_items;
    if (v->n_channels < 1 || v->n_channels > BF_MAX_CHANNELS || rows->items[0].kind != JSON_ARRAY) {
        schema_fail(s, "counts must be 1..16 lists (one per channel)");
        return;
    }
    v->n_samples = rows->items[0].n_items;
    if (v->n_samples < 1 || v->n_samples * v->n_channels > MAX_VALUES) {
        schema_fail(s, "counts must hold 1..%u values", MAX_VALUES);
        return;
    }
    for (c = 0; c < v->n_channels; ++c) {
        const json_value *row = &rows->items[c];
        if (row->kind != JSON_ARRAY || row->n_items != v->n_samples) {
            schema_fail(s, "counts rows must be lists of equal length");
            return;
        }
        for (k = 0; k < v->n_samples; ++k) {
            /* JSON shape (n_channels, n_samples) -> the encoder's sample-major order. */
            v->counts[k * v->n_channels + c] = (int32_t)integer_of(s, &row->items[k], "count", lowest, highest);
        }
    }
}

static void read_payload(schema *s, const json_value *payload, valid_vector *v)
{
    static const char *const status_keys[] = {"battery_pct", "battery_mv", "lead_off_mask", "saturation_mask"};
    static const char *const marker_keys[] = {"code", "label"};
    static const char *const control_keys[] = {"command", "sample_rate_mhz"};
    static const char *const raw_keys[] = {"raw_hex"};

    switch (v->header.type) {
    case BF_TYPE_INFO:
        read_info(s, payload, v);
        break;
    case BF_TYPE_EMG:
    case BF_TYPE_IMU:
        read_samples(s, payload, v);
        break;
    case BF_TYPE_STATUS:
        expect_keys(s, payload, status_keys, 4);
        v->status.battery_pct = (uint8_t)integer_member(s, payload, "battery_pct", 0, 255);
        v->status.battery_mv = (uint16_t)integer_member(s, payload, "battery_mv", 0, 65535);
        v->status.lead_off_mask = (uint16_t)integer_member(s, payload, "lead_off_mask", 0, 65535);
        v->status.saturation_mask = (uint16_t)integer_member(s, payload, "saturation_mask", 0, 65535);
        break;
    case BF_TYPE_MARKER:
        expect_keys(s, payload, marker_keys, 2);
        v->marker_code = (uint8_t)integer_member(s, payload, "code", 0, 255);
        v->label = string_member(s, payload, "label");
        break;
    case BF_TYPE_CONTROL:
        expect_keys(s, payload, control_keys, 2);
        v->command = (uint8_t)(1 + name_index(s, string_member(s, payload, "command"), command_names, 4, "command"));
        v->sample_rate_mhz = (uint32_t)integer_member(s, payload, "sample_rate_mhz", 0, 4294967295LL);
        break;
    default:
        expect_keys(s, payload, raw_keys, 1);
        v->raw_length = hex_member(s, payload, "raw_hex", v->raw, sizeof v->raw);
        break;
    }
}

static void read_valid(schema *s, const json_value *object, valid_vector *v)
{
    static const char *const keys[] = {"name",    "description", "type",    "stream_id",  "flags",    "seq",
                                       "first_sample_index", "version", "payload", "packet_hex", "frame_hex"};
    const json_value *version, *payload;

    memset(v, 0, sizeof *v);
    v->name = string_member(s, object, "name");
    s->where = v->name;
    expect_keys(s, object, keys, sizeof keys / sizeof keys[0]);
    if (s->failed) {
        return;
    }
    v->header.type = (uint8_t)integer_member(s, object, "type", 0, 255);
    v->header.stream_id = (uint8_t)integer_member(s, object, "stream_id", 0, 255);
    v->header.flags = (uint8_t)integer_member(s, object, "flags", 0, 255);
    v->header.seq = (uint16_t)integer_member(s, object, "seq", 0, 65535);
    v->header.first_sample_index = (uint32_t)integer_member(s, object, "first_sample_index", 0, 4294967295LL);
    version = member(s, object, "version", JSON_ARRAY);
    payload = member(s, object, "payload", JSON_OBJECT);
    if (s->failed) {
        return;
    }
    if (version->n_items != 2) {
        schema_fail(s, "version must be [major, minor]");
        return;
    }
    v->header.version = (uint8_t)(integer_of(s, &version->items[0], "major", 0, 15) << 4
                                  | integer_of(s, &version->items[1], "minor", 0, 15));
    read_payload(s, payload, v);
    v->packet_length = hex_member(s, object, "packet_hex", v->packet, sizeof v->packet);
    v->frame_length = hex_member(s, object, "frame_hex", v->frame, sizeof v->frame);
}

/* --- checks ------------------------------------------------------------------------------ */

static size_t first_difference(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length)
{
    size_t i;
    for (i = 0; i < a_length && i < b_length && a[i] == b[i]; ++i) {
    }
    return i;
}

static void check_bytes(tally *t, const char *name, const char *what, const uint8_t *got, size_t got_length,
                        const uint8_t *expected, size_t expected_length)
{
    check(t, got_length == expected_length && memcmp(got, expected, got_length) == 0,
          "%s: %s differs (%lu bytes, expected %lu; first difference at byte %lu)", name, what,
          (unsigned long)got_length, (unsigned long)expected_length,
          (unsigned long)first_difference(got, got_length, expected, expected_length));
}

static bf_status encode_vector(const valid_vector *v, uint8_t *packet, size_t capacity, size_t *packet_length)
{
    uint8_t payload[5];
    switch (v->header.type) {
    case BF_TYPE_INFO:
        return bf_encode_info(&v->header, &v->info, packet, capacity, packet_length);
    case BF_TYPE_EMG:
    case BF_TYPE_IMU:
        return bf_encode_samples(&v->header, v->format, v->counts, v->n_channels, v->n_samples, packet, capacity,
                                 packet_length);
    case BF_TYPE_STATUS:
        return bf_encode_status(&v->header, &v->status, packet, capacity, packet_length);
    case BF_TYPE_MARKER:
        return bf_encode_marker(&v->header, v->marker_code, v->label, packet, capacity, packet_length);
    case BF_TYPE_CONTROL:
        /* The device only decodes CONTROL; build its payload here to check the generic encoder. */
        payload[0] = v->command;
        payload[1] = (uint8_t)(v->sample_rate_mhz & 0xFFu);
        payload[2] = (uint8_t)((v->sample_rate_mhz >> 8) & 0xFFu);
        payload[3] = (uint8_t)((v->sample_rate_mhz >> 16) & 0xFFu);
        payload[4] = (uint8_t)(v->sample_rate_mhz >> 24);
        return bf_encode_packet(&v->header, payload, v->command == BF_COMMAND_SET_RATE ? 5u : 1u, packet, capacity,
                                packet_length);
    default:
        return bf_encode_packet(&v->header, v->raw, v->raw_length, packet, capacity, packet_length);
    }
}

/* Decode a frame (without delimiter) from an exactly sized heap copy, so ASan sees any overrun. */
static bf_status decode_control_copy(const uint8_t *frame, size_t length, bf_control *control)
{
    uint8_t *copy = malloc(length ? length : 1);
    bf_status status;
    if (copy == NULL) {
        return BF_ERR_BUFFER;
    }
    if (length > 0) {
        memcpy(copy, frame, length);
    }
    status = bf_decode_control(copy, length, control);
    free(copy);
    return status;
}

static void check_valid(tally *t, const valid_vector *v)
{
    uint8_t packet[BF_MAX_PACKET_BYTES], frame[BF_MAX_FRAME_BYTES], decoded[BF_MAX_PACKET_BYTES];
    size_t packet_length = 0, frame_length = 0, decoded_length = 0;
    bf_status status = encode_vector(v, packet, sizeof packet, &packet_length);
    bf_header header;
    const uint8_t *payload = NULL;
    bf_control control;

    if (!check(t, status == BF_OK, "%s: encoder returned %s", v->name, bf_status_reason(status))) {
        return;
    }
    check_bytes(t, v->name, "packet", packet, packet_length, v->packet, v->packet_length);
    status = bf_frame_packet(packet, packet_length, frame, sizeof frame, &frame_length);
    check(t, status == BF_OK, "%s: bf_frame_packet returned %s", v->name, bf_status_reason(status));
    check_bytes(t, v->name, "frame", frame, frame_length, v->frame, v->frame_length);

    status = bf_cobs_decode(v->frame, v->frame_length - 1, decoded, sizeof decoded, &decoded_length);
    check(t, status == BF_OK, "%s: COBS decoding of the frame returned %s", v->name, bf_status_reason(status));
    check_bytes(t, v->name, "COBS-decoded frame", decoded, decoded_length, v->packet, v->packet_length);

    status = bf_decode_packet(v->packet, v->packet_length, &header, &payload);
    if (check(t, status == BF_OK, "%s: bf_decode_packet returned %s", v->name, bf_status_reason(status))) {
        check(t,
              header.version == v->header.version && header.type == v->header.type
                  && header.stream_id == v->header.stream_id && header.flags == v->header.flags
                  && header.seq == v->header.seq && header.first_sample_index == v->header.first_sample_index
                  && (size_t)header.payload_length + BF_MIN_PACKET_BYTES == v->packet_length
                  && payload == v->packet + BF_HEADER_BYTES,
              "%s: decoded header differs from the vector's fields", v->name);
    }

    status = decode_control_copy(v->frame, v->frame_length - 1, &control);
    if (v->header.type == BF_TYPE_CONTROL) {
        check(t,
              status == BF_OK && control.command == v->command && control.sample_rate_mhz == v->sample_rate_mhz
                  && control.header.stream_id == v->header.stream_id && control.header.seq == v->header.seq,
              "%s: CONTROL decoding gave %s or other fields", v->name, bf_status_reason(status));
    } else {
        check(t, status == BF_ERR_NOT_CONTROL, "%s: CONTROL decoder returned %s, expected not_control", v->name,
              bf_status_reason(status));
    }
}

static void check_invalid(tally *t, schema *s, const json_value *object)
{
    static const char *const keys[] = {"name", "description", "reason", "frame_hex"};
    static const char *const reasons[] = {"cobs", "too_short", "length", "oversize", "crc", "payload",
                                          "payload_size", "major_version", "unknown_type"};
    uint8_t frame[BF_MAX_DECODE_FRAME_BYTES + 1];
    size_t frame_length, i;
    const char *name, *reason, *expected;
    bf_control control;
    bf_status status;

    name = string_member(s, object, "name");
    s->where = name;
    expect_keys(s, object, keys, 4);
    reason = string_member(s, object, "reason");
    (void)name_index(s, reason, reasons, sizeof reasons / sizeof reasons[0], "reason");
    frame_length = hex_member(s, object, "frame_hex", frame, sizeof frame);
    if (frame_length < 1 || frame[frame_length - 1] != 0x00) {
        schema_fail(s, "frame_hex must end with the 0x00 delimiter");
    }
    for (i = 0; i + 1 < frame_length; ++i) {
        if (frame[i] == 0x00) {
            schema_fail(s, "frame_hex holds a 0x00 before its end");
        }
    }
    if (!check(t, !s->failed, "%s", s->error)) {
        s->failed = 0;
        return;
    }
    /* The CONTROL decoder knows no sample streams: a sample packet is simply not CONTROL. */
    expected = strcmp(reason, "payload_size") == 0 ? "not_control" : reason;
    status = decode_control_copy(frame, frame_length - 1, &control);
    check(t, strcmp(bf_status_reason(status), expected) == 0, "%s: CONTROL decoder returned %s, expected %s", name,
          bf_status_reason(status), expected);
}

/* Every one-byte change and every truncation of a frame: the decoder answers, and sanely. */
static void check_mutations(tally *t, const char *name, const uint8_t *frame, size_t length)
{
    uint8_t mutated[BF_MAX_FRAME_BYTES];
    size_t i, bad = 0;
    unsigned bit;
    bf_control control;
    bf_status status;

    if (length > sizeof mutated) {
        return;
    }
    for (i = 0; i < length; ++i) {
        for (bit = 0; bit < 8; ++bit) {
            memcpy(mutated, frame, length);
            mutated[i] = (uint8_t)(mutated[i] ^ (1u << bit));
            status = decode_control_copy(mutated, length, &control);
            bad += status > BF_ERR_NOT_CONTROL
                   || (status == BF_OK && (control.command < BF_COMMAND_START || control.command > BF_COMMAND_SET_RATE));
        }
    }
    for (i = 0; i < length; ++i) {
        status = decode_control_copy(frame, i, &control);
        bad += status == BF_OK || status > BF_ERR_NOT_CONTROL;
    }
    check(t, bad == 0, "%s: %lu mutated or truncated frames were mishandled", name, (unsigned long)bad);
}

/* --- checks that need no vectors --------------------------------------------------------- */

static void check_crc_and_cobs(tally *t)
{
    static const uint8_t check_input[] = "123456789";
    uint8_t data[700], encoded[BF_COBS_MAX_ENCODED_BYTES(700)], decoded[700];
    size_t encoded_length, decoded_length, length, i;
    uint32_t state = 12345u;
    int round_trips = 1;

    check(t, bf_crc16_xmodem(check_input, 9) == 0x31C3, "CRC-16/XMODEM check value of \"123456789\"");
    check(t, bf_crc16_update(bf_crc16_xmodem(check_input, 4), check_input + 4, 5) == 0x31C3,
          "CRC continued over two pieces");
    check(t, bf_cobs_encode(data, 0, encoded, sizeof encoded, &encoded_length) == BF_OK && encoded_length == 1
                 && encoded[0] == 0x01,
          "COBS of nothing is 01");
    memset(data, 0x01, 254);
    check(t, bf_cobs_encode(data, 254, encoded, sizeof encoded, &encoded_length) == BF_OK && encoded_length == 255
                 && encoded[0] == 0xFF,
          "COBS of 254 non-zero bytes is one full block without trailing code");
    data[254] = 0x00;
    check(t, bf_cobs_encode(data, 255, encoded, sizeof encoded, &encoded_length) == BF_OK && encoded_length == 257
                 && encoded[255] == 0x01 && encoded[256] == 0x01,
          "COBS of 254 non-zero bytes and a zero ends 01 01");
    check(t, bf_cobs_encode(data, 255, encoded, 256, &encoded_length) == BF_ERR_BUFFER, "COBS refuses a small buffer");
    check(t, bf_cobs_decode((const uint8_t *)"\x03\x01", 2, decoded, sizeof decoded, &decoded_length) == BF_ERR_COBS,
          "COBS decode refuses a code past the end");
    check(t, bf_cobs_decode((const uint8_t *)"\x02\x00", 2, decoded, sizeof decoded, &decoded_length) == BF_ERR_COBS,
          "COBS decode refuses a zero byte");
    /* Round trips over lengths 0..699 with zero densities from none to all (a seeded LCG). */
    for (length = 0; length < sizeof data; ++length) {
        uint32_t zero_every = 1u + (uint32_t)(length % 7u) * 60u;
        for (i = 0; i < length; ++i) {
            state = state * 1664525u + 1013904223u;
            data[i] = (state >> 8) % zero_every == 0 ? 0 : (uint8_t)(1u + (state >> 16) % 255u);
        }
        if (bf_cobs_encode(data, length, encoded, sizeof encoded, &encoded_length) != BF_OK
            || memchr(encoded, 0, encoded_length) != NULL
            || bf_cobs_decode(encoded, encoded_length, decoded, sizeof decoded, &decoded_length) != BF_OK
            || decoded_length != length || (length > 0 && memcmp(decoded, data, length) != 0)
            /* In-place decoding gives the same bytes. */
            || bf_cobs_decode(encoded, encoded_length, encoded, encoded_length, &decoded_length) != BF_OK
            || decoded_length != length || (length > 0 && memcmp(encoded, data, length) != 0)) {
            round_trips = 0;
        }
    }
    check(t, round_trips, "COBS round trips of 700 buffers (encode, decode, in-place decode)");
}

static void check_encoder_arguments(tally *t)
{
    static const bf_channel_info channel = {BF_KIND_EMG, 1.0f, "a", ""};
    uint8_t packet[BF_MAX_PACKET_BYTES];
    size_t length;
    int32_t counts[600];
    bf_header emg = {BF_VERSION_1_0, BF_TYPE_EMG, 1, 0, 0, 0, 0};
    bf_header info_header = {BF_VERSION_1_0, BF_TYPE_INFO, 0, 0, 0, 0, 0};
    bf_header marker = {BF_VERSION_1_0, BF_TYPE_MARKER, 1, 0, 0, 0, 0};
    bf_stream_info streams[2] = {{1, "a", BF_FORMAT_INT24, 1000, 1, &channel}, {1, "b", BF_FORMAT_INT24, 1000, 1, &channel}};
    bf_device_info info = {{0, 1, 0}, "dev", "board", 2, streams};
    char long_label[300];

    memset(counts, 0, sizeof counts);
    counts[1] = 8388608;
    check(t, bf_encode_samples(&emg, BF_FORMAT_INT24, counts, 2, 1, packet, sizeof packet, &length) == BF_ERR_ARGUMENT,
          "int24 count 8388608 is refused");
    counts[1] = -32769;
    check(t, bf_encode_samples(&emg, BF_FORMAT_INT16, counts, 2, 1, packet, sizeof packet, &length) == BF_ERR_ARGUMENT,
          "int16 count -32769 is refused");
    counts[1] = 0;
    check(t, bf_encode_samples(&emg, BF_FORMAT_INT16, counts, 1, 513, packet, sizeof packet, &length)
                 == BF_ERR_ARGUMENT,
          "a 1026-byte sample payload is refused");
    check(t, bf_encode_samples(&emg, BF_FORMAT_INT16, counts, 1, 512, packet, sizeof packet, &length) == BF_OK
                 && length == BF_MAX_PACKET_BYTES,
          "a 1024-byte sample payload is encoded");
    check(t, bf_encode_samples(&emg, BF_FORMAT_INT16, counts, 1, 512, packet, BF_MAX_PACKET_BYTES - 1, &length)
                 == BF_ERR_BUFFER,
          "a packet buffer one byte short is refused");
    check(t, bf_encode_samples(&info_header, BF_FORMAT_INT16, counts, 1, 1, packet, sizeof packet, &length)
                 == BF_ERR_ARGUMENT,
          "a sample block with header type INFO is refused");
    check(t, bf_encode_info(&info_header, &info, packet, sizeof packet, &length) == BF_ERR_ARGUMENT,
          "INFO with a repeated stream id is refused");
    streams[1].stream_id = 2;
    check(t, bf_encode_info(&info_header, &info, packet, sizeof packet, &length) == BF_OK, "INFO with two streams");
    memset(long_label, 'x', 256);
    long_label[256] = '\0';
    check(t, bf_encode_marker(&marker, 1, long_label, packet, sizeof packet, &length) == BF_ERR_ARGUMENT,
          "a 256-byte MARKER label is refused");
    long_label[255] = '\0';
    check(t, bf_encode_marker(&marker, 1, long_label, packet, sizeof packet, &length) == BF_OK && length == 14 + 257,
          "a 255-byte MARKER label is encoded");
}

/* --- main -------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    char *text = NULL;
    long size;
    if (file == NULL) {
        return NULL;
    }
    if (fseek(file, 0, SEEK_END) == 0 && (size = ftell(file)) >= 0 && fseek(file, 0, SEEK_SET) == 0) {
        text = malloc((size_t)size + 1);
        if (text != NULL && fread(text, 1, (size_t)size, file) != (size_t)size) {
            free(text);
            text = NULL;
        }
        *length = (size_t)size;
    }
    fclose(file);
    return text;
}

int main(int argc, char **argv)
{
    static valid_vector vector; /* large: off the stack */
    tally t = {0, 0};
    schema s;
    json_value root;
    const json_value *valid, *invalid, *schema_name;
    char error[200];
    char *text;
    size_t length = 0, i;
    static const char *const top_keys[] = {"schema", "protocol_version", "generator", "valid", "invalid"};

    if (argc != 2) {
        fputs("usage: test_vectors PATH/TO/vectors.json\n", stderr);
        return 2;
    }
    check_crc_and_cobs(&t);
    check_encoder_arguments(&t);

    text = read_file(argv[1], &length);
    if (!check(&t, text != NULL, "cannot read %s", argv[1])) {
        return report(&t);
    }
    if (!check(&t, json_parse(text, length, &root, error, sizeof error), "%s is not JSON: %s", argv[1], error)) {
        free(text);
        return report(&t);
    }
    free(text);
    memset(&s, 0, sizeof s);
    s.where = "top level";
    expect_keys(&s, &root, top_keys, 5);
    schema_name = member(&s, &root, "schema", JSON_STRING);
    valid = member(&s, &root, "valid", JSON_ARRAY);
    invalid = member(&s, &root, "invalid", JSON_ARRAY);
    if (!s.failed && strcmp(schema_name->text, SCHEMA) != 0) {
        schema_fail(&s, "schema is \"%s\", expected \"%s\"", schema_name->text, SCHEMA);
    }
    if (!check(&t, !s.failed, "%s", s.error)) {
        json_free(&root);
        return report(&t);
    }
    printf("test_vectors: %lu valid and %lu invalid vectors from %s\n", (unsigned long)valid->n_items,
           (unsigned long)invalid->n_items, argv[1]);
    for (i = 0; i < valid->n_items; ++i) {
        s.where = "a valid vector";
        read_valid(&s, &valid->items[i], &vector);
        if (check(&t, !s.failed, "%s", s.error)) {
            check_valid(&t, &vector);
            check_mutations(&t, vector.name, vector.frame, vector.frame_length - 1);
        }
        s.failed = 0;
    }
    for (i = 0; i < invalid->n_items; ++i) {
        s.where = "an invalid vector";
        check_invalid(&t, &s, &invalid->items[i]);
        s.failed = 0;
    }
    check(&t, valid->n_items > 0 && invalid->n_items > 0, "the file holds valid and invalid vectors");
    json_free(&root);
    return report(&t);
}
