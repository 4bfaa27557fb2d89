/*
 * biofeed wire protocol 1.0: reference encoder (device -> host) and CONTROL decoder (host -> device).
 *
 * The spec is firmware_protocol/PROTOCOL.md; vectors/vectors.json holds this code byte-identical
 * with the Python codec (biofeed.protocol).
 *
 * C99, no malloc, no globals: every function works on caller-provided structs and buffers, so the
 * code is reentrant and fits an interrupt-free firmware loop. Multi-byte fields are packed byte by
 * byte in little-endian order (no struct casting), floats through memcpy into a uint32_t, so the
 * output is the same on every host and MCU.
 *
 * Typical use on a device:
 *
 *     uint8_t packet[BF_MAX_PACKET_BYTES], frame[BF_MAX_FRAME_BYTES];
 *     size_t packet_length, frame_length;
 *     bf_header header = {BF_VERSION_1_0, BF_TYPE_EMG, 1, 0, seq, first_sample_index, 0};
 *     if (bf_encode_samples(&header, BF_FORMAT_INT24, counts, 2, 20, packet, sizeof packet,
 *                           &packet_length) == BF_OK
 *         && bf_frame_packet(packet, packet_length, frame, sizeof frame, &frame_length) == BF_OK) {
 *         write(frame, frame_length);
 *     }
 */
#ifndef BIOFEED_PROTO_H
#define BIOFEED_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- sizes ------------------------------------------------------------------------------- */

#define BF_PROTOCOL_MAJOR 1u
#define BF_PROTOCOL_MINOR 0u
/* Header byte 0 of packets this code sends: major << 4 | minor. */
#define BF_VERSION_1_0 ((uint8_t)((BF_PROTOCOL_MAJOR << 4) | BF_PROTOCOL_MINOR))

#define BF_HEADER_BYTES 12u
#define BF_CRC_BYTES 2u
#define BF_MAX_PAYLOAD_BYTES 1024u
#define BF_MIN_PACKET_BYTES (BF_HEADER_BYTES + BF_CRC_BYTES)
#define BF_MAX_PACKET_BYTES (BF_HEADER_BYTES + BF_MAX_PAYLOAD_BYTES + BF_CRC_BYTES)
/* COBS adds one code byte per started run of 254 bytes (and one for an empty input). */
#define BF_COBS_MAX_ENCODED_BYTES(n) ((n) + (n) / 254u + 1u)
/* A whole frame: COBS of the largest packet and the 0x00 delimiter. */
#define BF_MAX_FRAME_BYTES (BF_COBS_MAX_ENCODED_BYTES(BF_MAX_PACKET_BYTES) + 1u)
/* Frames longer than this are refused before COBS decoding (as the Python codec does). */
#define BF_MAX_DECODE_FRAME_BYTES (2u * BF_MAX_PACKET_BYTES)

#define BF_MAX_STREAMS 8u
#define BF_MAX_CHANNELS 16u
#define BF_MAX_STRING_BYTES 255u

/* --- codes on the wire ------------------------------------------------------------------- */

typedef enum bf_packet_type {
    BF_TYPE_INFO = 0x01,
    BF_TYPE_EMG = 0x02,
    BF_TYPE_IMU = 0x03,
    BF_TYPE_STATUS = 0x04,
    BF_TYPE_MARKER = 0x05,
    BF_TYPE_CONTROL = 0x10
} bf_packet_type;

/* Header flag bit 0: a repeated (periodic) INFO. */
#define BF_FLAG_PERIODIC 0x01u

typedef enum bf_sample_format {
    BF_FORMAT_INT16 = 1,
    BF_FORMAT_INT24 = 2
} bf_sample_format;

typedef enum bf_channel_kind {
    BF_KIND_EMG = 1,   /* µV */
    BF_KIND_ACC = 2,   /* g */
    BF_KIND_GYRO = 3,  /* deg/s */
    BF_KIND_MAG = 4,   /* µT */
    BF_KIND_QUAT = 5,  /* unitless */
    BF_KIND_ANGLE = 6  /* deg */
} bf_channel_kind;

typedef enum bf_control_command {
    BF_COMMAND_START = 1,
    BF_COMMAND_STOP = 2,
    BF_COMMAND_REQUEST_INFO = 3,
    BF_COMMAND_SET_RATE = 4
} bf_control_command;

/* --- results ----------------------------------------------------------------------------- */

/*
 * Result of every function that can fail. The decode errors mirror the reasons of the Python
 * codec (biofeed.protocol.CORRUPT_REASONS); bf_status_reason() gives that string.
 */
typedef enum bf_status {
    BF_OK = 0,
    BF_ERR_ARGUMENT,      /* a NULL pointer or a field outside its range; nothing written */
    BF_ERR_BUFFER,        /* the output buffer is too small; nothing usable written */
    BF_ERR_COBS,          /* "cobs": the frame is not valid COBS */
    BF_ERR_TOO_SHORT,     /* "too_short": fewer bytes than a header and a CRC */
    BF_ERR_LENGTH,        /* "length": decoded size disagrees with payload_length */
    BF_ERR_OVERSIZE,      /* "oversize": payload_length or frame beyond the limits */
    BF_ERR_CRC,           /* "crc": CRC mismatch */
    BF_ERR_MAJOR_VERSION, /* "major_version": another major protocol version */
    BF_ERR_PAYLOAD,       /* "payload": a CONTROL payload that does not parse (or unknown command) */
    BF_ERR_NOT_CONTROL    /* a valid packet that is not a CONTROL packet */
} bf_status;

/* Short machine-readable name of a status ("ok", "argument", "buffer", "cobs", ...). */
const char *bf_status_reason(bf_status status);

/* --- structures -------------------------------------------------------------------------- */

/* The 12-byte header. payload_length is set by the encoders and by the decoders. */
typedef struct bf_header {
    uint8_t version;              /* major << 4 | minor; encoders send BF_VERSION_1_0 */
    uint8_t type;                 /* bf_packet_type */
    uint8_t stream_id;            /* 0 for device-level packets */
    uint8_t flags;                /* BF_FLAG_PERIODIC or 0 */
    uint16_t seq;                 /* device-wide packet counter */
    uint32_t first_sample_index;  /* stream's sample counter at the first sample / the event */
    uint16_t payload_length;      /* bytes of payload */
} bf_header;

/* One channel in INFO. Strings are NUL-terminated UTF-8 of at most 255 bytes. */
typedef struct bf_channel_info {
    uint8_t kind;      /* bf_channel_kind */
    float scale;       /* physical units per count */
    const char *name;  /* e.g. "es_left" */
    const char *site;  /* placement, may be "" */
} bf_channel_info;

/* One stream in INFO. */
typedef struct bf_stream_info {
    uint8_t stream_id;                 /* 1..255 */
    const char *name;                  /* e.g. "emg" */
    uint8_t sample_format;             /* bf_sample_format */
    uint32_t sample_rate_mhz;          /* nominal rate in millihertz (2000 Hz = 2000000) */
    uint8_t n_channels;                /* 1..16 */
    const bf_channel_info *channels;   /* n_channels entries */
} bf_stream_info;

/* The device as INFO describes it. */
typedef struct bf_device_info {
    uint8_t firmware_version[3];       /* major, minor, patch */
    const char *device_id;             /* stable per board */
    const char *board_profile;         /* file name in calibration/boards/ */
    uint8_t n_streams;                 /* 1..8 */
    const bf_stream_info *streams;     /* n_streams entries */
} bf_device_info;

/* STATUS payload: masks have bit i for channel i. */
typedef struct bf_status_info {
    uint8_t battery_pct;      /* 0..100, 255 = unknown */
    uint16_t battery_mv;      /* 0 = unknown */
    uint16_t lead_off_mask;
    uint16_t saturation_mask;
} bf_status_info;

/* A decoded CONTROL packet. */
typedef struct bf_control {
    bf_header header;          /* stream_id names the stream SET_RATE applies to */
    uint8_t command;           /* bf_control_command */
    uint32_t sample_rate_mhz;  /* SET_RATE only; 0 otherwise */
} bf_control;

/* --- building blocks --------------------------------------------------------------------- */

/* CRC-16/XMODEM (poly 0x1021, init 0, no reflection, no final XOR), continued from crc. */
uint16_t bf_crc16_update(uint16_t crc, const uint8_t *data, size_t length);
/* CRC-16/XMODEM of data: bf_crc16_update(0, data, length). "123456789" gives 0x31C3. */
uint16_t bf_crc16_xmodem(const uint8_t *data, size_t length);

/*
 * COBS-encode length bytes of src into dst (no delimiter). dst must not overlap src and hold
 * BF_COBS_MAX_ENCODED_BYTES(length) bytes. Same output as Python's cobs.cobs.encode.
 */
bf_status bf_cobs_encode(const uint8_t *src, size_t length, uint8_t *dst, size_t capacity,
                         size_t *encoded_length);

/*
 * COBS-decode length bytes of src (one frame without its 0x00 delimiter) into dst. dst may equal
 * src (in-place decoding). Returns BF_ERR_COBS for a 0x00 inside the input or a code byte that
 * runs past the end, like Python's cobs.cobs.decode.
 */
bf_status bf_cobs_decode(const uint8_t *src, size_t length, uint8_t *dst, size_t capacity,
                         size_t *decoded_length);

/* --- encoders (packet = header | payload | CRC, before COBS) ------------------------------ */

/*
 * Generic packet: header fields from *header (payload_length taken from payload_length), any
 * type and version. Used for types this file has no encoder for.
 */
bf_status bf_encode_packet(const bf_header *header, const uint8_t *payload, size_t payload_length,
                           uint8_t *packet, size_t capacity, size_t *packet_length);

/* INFO; header->type must be BF_TYPE_INFO. */
bf_status bf_encode_info(const bf_header *header, const bf_device_info *info, uint8_t *packet,
                         size_t capacity, size_t *packet_length);

/*
 * EMG or IMU sample block; header->type must be BF_TYPE_EMG or BF_TYPE_IMU. counts holds
 * n_samples x n_channels values, sample-major (all channels of sample 0, then sample 1, ...),
 * each within the format's range (int16: -32768..32767, int24: -8388608..8388607).
 */
bf_status bf_encode_samples(const bf_header *header, bf_sample_format format, const int32_t *counts,
                            size_t n_channels, size_t n_samples, uint8_t *packet, size_t capacity,
                            size_t *packet_length);

/* STATUS; header->type must be BF_TYPE_STATUS. */
bf_status bf_encode_status(const bf_header *header, const bf_status_info *status, uint8_t *packet,
                           size_t capacity, size_t *packet_length);

/* MARKER; header->type must be BF_TYPE_MARKER. label: NUL-terminated UTF-8, at most 255 bytes. */
bf_status bf_encode_marker(const bf_header *header, uint8_t code, const char *label, uint8_t *packet,
                           size_t capacity, size_t *packet_length);

/* COBS-encode a packet and append the 0x00 delimiter: the bytes to put on the wire. */
bf_status bf_frame_packet(const uint8_t *packet, size_t packet_length, uint8_t *frame, size_t capacity,
                          size_t *frame_length);

/* --- decoders ---------------------------------------------------------------------------- */

/*
 * Check packet bytes (after COBS decoding) and parse the header: too_short, oversize, length, crc,
 * major_version, in the Python codec's order. On BF_OK *payload points into packet.
 */
bf_status bf_decode_packet(const uint8_t *packet, size_t length, bf_header *header,
                           const uint8_t **payload);

/*
 * Decode one received CONTROL frame (without its 0x00 delimiter). The frame is COBS-decoded in
 * place, so its bytes are overwritten. Bytes after the known fields are ignored (a newer minor
 * version may append fields). Unknown commands give BF_ERR_PAYLOAD: the device ignores them.
 */
bf_status bf_decode_control(uint8_t *frame, size_t length, bf_control *control);

#ifdef __cplusplus
}
#endif

#endif /* BIOFEED_PROTO_H */
