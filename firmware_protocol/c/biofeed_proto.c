/* biofeed wire protocol 1.0: encoder and CONTROL decoder. See biofeed_proto.h and PROTOCOL.md. */
#include "biofeed_proto.h"

#include <string.h>

/* Floats go on the wire as IEEE-754 binary32 through a uint32_t; refuse to build elsewhere. */
typedef char bf_float_is_32_bits[(sizeof(float) == sizeof(uint32_t)) ? 1 : -1];

#define BF_INT24_MIN (-8388608L)
#define BF_INT24_MAX 8388607L
#define BF_INT16_MIN (-32768L)
#define BF_INT16_MAX 32767L

const char *bf_status_reason(bf_status status)
{
    switch (status) {
    case BF_OK: return "ok";
    case BF_ERR_ARGUMENT: return "argument";
    case BF_ERR_BUFFER: return "buffer";
    case BF_ERR_COBS: return "cobs";
    case BF_ERR_TOO_SHORT: return "too_short";
    case BF_ERR_LENGTH: return "length";
    case BF_ERR_OVERSIZE: return "oversize";
    case BF_ERR_CRC: return "crc";
    case BF_ERR_MAJOR_VERSION: return "major_version";
    case BF_ERR_PAYLOAD: return "payload";
    case BF_ERR_NOT_CONTROL: return "not_control";
    }
    return "unknown";
}

/* --- CRC and COBS ------------------------------------------------------------------------ */

uint16_t bf_crc16_update(uint16_t crc, const uint8_t *data, size_t length)
{
    size_t i;
    int bit;
    unsigned value = crc;
    /* Bitwise rather than a 512-byte table: a few kB/s of data do not need the speed. */
    for (i = 0; i < length; ++i) {
        value ^= (unsigned)data[i] << 8;
        for (bit = 0; bit < 8; ++bit) {
            value = (value & 0x8000u) ? ((value << 1) ^ 0x1021u) : (value << 1);
        }
        value &= 0xFFFFu;
    }
    return (uint16_t)value;
}

uint16_t bf_crc16_xmodem(const uint8_t *data, size_t length)
{
    return bf_crc16_update(0, data, length);
}

bf_status bf_cobs_encode(const uint8_t *src, size_t length, uint8_t *dst, size_t capacity,
                         size_t *encoded_length)
{
    size_t i;
    size_t out = 1;      /* next free byte of dst */
    size_t code_at = 0;  /* where the code byte of the open block goes */
    uint8_t code = 1;    /* 1 + bytes in the open block */
    int after_full_block = 0;

    if ((src == NULL && length > 0) || dst == NULL || encoded_length == NULL) {
        return BF_ERR_ARGUMENT;
    }
    if (capacity < BF_COBS_MAX_ENCODED_BYTES(length)) {
        return BF_ERR_BUFFER;
    }
    for (i = 0; i < length; ++i) {
        if (src[i] == 0) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
            after_full_block = 0;
        } else {
            dst[out++] = src[i];
            ++code;
            after_full_block = 0;
            if (code == 0xFF) {
                /* A full block of 254 bytes carries no implicit zero; close it at once. */
                dst[code_at] = code;
                code_at = out++;
                code = 1;
                after_full_block = 1;
            }
        }
    }
    if (after_full_block) {
        /* Input ended exactly with a full block: no trailing code byte (as Python's cobs does). */
        --out;
    } else {
        dst[code_at] = code;
    }
    *encoded_length = out;
    return BF_OK;
}

bf_status bf_cobs_decode(const uint8_t *src, size_t length, uint8_t *dst, size_t capacity,
                         size_t *decoded_length)
{
    size_t in = 0;
    size_t out = 0;

    if ((src == NULL && length > 0) || dst == NULL || decoded_length == NULL) {
        return BF_ERR_ARGUMENT;
    }
    /* Writes never overtake reads (out <= in), so dst == src is safe. */
    while (in < length) {
        size_t code = src[in++];
        size_t end;
        if (code == 0) {
            return BF_ERR_COBS;
        }
        end = in + code - 1;
        if (end > length) {
            return BF_ERR_COBS;
        }
        if (out + (end - in) > capacity) {
            return BF_ERR_BUFFER;
        }
        while (in < end) {
            if (src[in] == 0) {
                return BF_ERR_COBS;
            }
            dst[out++] = src[in++];
        }
        if (in < length && code < 0xFF) {
            if (out >= capacity) {
                return BF_ERR_BUFFER;
            }
            dst[out++] = 0;
        }
    }
    *decoded_length = out;
    return BF_OK;
}

/* --- packing ----------------------------------------------------------------------------- */

/* Bounded little-endian writer over a caller's buffer; a write past the end sets overflow. */
typedef struct bf_writer {
    uint8_t *buffer;
    size_t capacity;
    size_t length;
    int overflow;
} bf_writer;

static void put_u8(bf_writer *w, uint8_t value)
{
    if (w->length >= w->capacity) {
        w->overflow = 1;
        return;
    }
    w->buffer[w->length++] = value;
}

static void put_u16(bf_writer *w, uint16_t value)
{
    put_u8(w, (uint8_t)(value & 0xFFu));
    put_u8(w, (uint8_t)(value >> 8));
}

static void put_u32(bf_writer *w, uint32_t value)
{
    put_u8(w, (uint8_t)(value & 0xFFu));
    put_u8(w, (uint8_t)((value >> 8) & 0xFFu));
    put_u8(w, (uint8_t)((value >> 16) & 0xFFu));
    put_u8(w, (uint8_t)(value >> 24));
}

static void put_f32(bf_writer *w, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_u32(w, bits);
}

static void put_bytes(bf_writer *w, const uint8_t *data, size_t length)
{
    if (length > w->capacity - w->length) {
        w->overflow = 1;
        return;
    }
    if (length > 0) {
        memcpy(w->buffer + w->length, data, length);
    }
    w->length += length;
}

static int string_fits(const char *text)
{
    return text != NULL && strlen(text) <= BF_MAX_STRING_BYTES;
}

/* Caller has checked string_fits(text). */
static void put_string(bf_writer *w, const char *text)
{
    size_t length = strlen(text);
    put_u8(w, (uint8_t)length);
    put_bytes(w, (const uint8_t *)text, length);
}

static void put_header(bf_writer *w, const bf_header *header, uint16_t payload_length)
{
    put_u8(w, header->version);
    put_u8(w, header->type);
    put_u8(w, header->stream_id);
    put_u8(w, header->flags);
    put_u16(w, header->seq);
    put_u32(w, header->first_sample_index);
    put_u16(w, payload_length);
}

/* Start a packet: the payload goes after the header, which begin/finish write around it. */
static bf_status begin_packet(bf_writer *w, uint8_t *packet, size_t capacity)
{
    if (packet == NULL) {
        return BF_ERR_ARGUMENT;
    }
    if (capacity < BF_MIN_PACKET_BYTES) {
        return BF_ERR_BUFFER;
    }
    w->buffer = packet;
    /* Keep room for the CRC so an overflowing payload is caught while writing it. */
    w->capacity = capacity - BF_CRC_BYTES;
    w->length = BF_HEADER_BYTES;
    w->overflow = 0;
    return BF_OK;
}

static bf_status finish_packet(bf_writer *w, const bf_header *header, size_t *packet_length)
{
    size_t payload_length = w->length - BF_HEADER_BYTES;
    bf_writer header_writer;
    uint16_t crc;

    if (payload_length > BF_MAX_PAYLOAD_BYTES) {
        return BF_ERR_ARGUMENT;
    }
    if (w->overflow) {
        return BF_ERR_BUFFER;
    }
    header_writer.buffer = w->buffer;
    header_writer.capacity = BF_HEADER_BYTES;
    header_writer.length = 0;
    header_writer.overflow = 0;
    put_header(&header_writer, header, (uint16_t)payload_length);
    crc = bf_crc16_xmodem(w->buffer, w->length);
    w->capacity += BF_CRC_BYTES;
    put_u16(w, crc);
    *packet_length = w->length;
    return BF_OK;
}

bf_status bf_encode_packet(const bf_header *header, const uint8_t *payload, size_t payload_length,
                           uint8_t *packet, size_t capacity, size_t *packet_length)
{
    bf_writer w;
    bf_status status;

    if (header == NULL || packet_length == NULL || (payload == NULL && payload_length > 0)) {
        return BF_ERR_ARGUMENT;
    }
    if (payload_length > BF_MAX_PAYLOAD_BYTES) {
        return BF_ERR_ARGUMENT;
    }
    status = begin_packet(&w, packet, capacity);
    if (status != BF_OK) {
        return status;
    }
    put_bytes(&w, payload, payload_length);
    return finish_packet(&w, header, packet_length);
}

static int stream_info_valid(const bf_stream_info *stream)
{
    uint8_t c;
    if (stream->stream_id == 0 || !string_fits(stream->name) || stream->sample_rate_mhz == 0
        || (stream->sample_format != BF_FORMAT_INT16 && stream->sample_format != BF_FORMAT_INT24)
        || stream->n_channels < 1 || stream->n_channels > BF_MAX_CHANNELS || stream->channels == NULL) {
        return 0;
    }
    for (c = 0; c < stream->n_channels; ++c) {
        const bf_channel_info *channel = &stream->channels[c];
        if (channel->kind < BF_KIND_EMG || channel->kind > BF_KIND_ANGLE || !string_fits(channel->name)
            || !string_fits(channel->site)) {
            return 0;
        }
    }
    return 1;
}

static int device_info_valid(const bf_device_info *info)
{
    uint8_t s, t;
    if (!string_fits(info->device_id) || !string_fits(info->board_profile) || info->n_streams < 1
        || info->n_streams > BF_MAX_STREAMS || info->streams == NULL) {
        return 0;
    }
    for (s = 0; s < info->n_streams; ++s) {
        if (!stream_info_valid(&info->streams[s])) {
            return 0;
        }
        for (t = 0; t < s; ++t) {
            if (info->streams[t].stream_id == info->streams[s].stream_id) {
                return 0;
            }
        }
    }
    return 1;
}

bf_status bf_encode_info(const bf_header *header, const bf_device_info *info, uint8_t *packet,
                         size_t capacity, size_t *packet_length)
{
    bf_writer w;
    bf_status status;
    uint8_t s, c;

    if (header == NULL || info == NULL || packet_length == NULL || header->type != BF_TYPE_INFO
        || !device_info_valid(info)) {
        return BF_ERR_ARGUMENT;
    }
    status = begin_packet(&w, packet, capacity);
    if (status != BF_OK) {
        return status;
    }
    put_u8(&w, info->firmware_version[0]);
    put_u8(&w, info->firmware_version[1]);
    put_u8(&w, info->firmware_version[2]);
    put_string(&w, info->device_id);
    put_string(&w, info->board_profile);
    put_u8(&w, info->n_streams);
    for (s = 0; s < info->n_streams; ++s) {
        const bf_stream_info *stream = &info->streams[s];
        put_u8(&w, stream->stream_id);
        put_string(&w, stream->name);
        put_u8(&w, stream->sample_format);
        put_u32(&w, stream->sample_rate_mhz);
        put_u8(&w, stream->n_channels);
        for (c = 0; c < stream->n_channels; ++c) {
            const bf_channel_info *channel = &stream->channels[c];
            put_u8(&w, channel->kind);
            put_f32(&w, channel->scale);
            put_string(&w, channel->name);
            put_string(&w, channel->site);
        }
    }
    return finish_packet(&w, header, packet_length);
}

bf_status bf_encode_samples(const bf_header *header, bf_sample_format format, const int32_t *counts,
                            size_t n_channels, size_t n_samples, uint8_t *packet, size_t capacity,
                            size_t *packet_length)
{
    bf_writer w;
    bf_status status;
    size_t i, n_values, bytes_per_sample;
    long lowest, highest;

    if (header == NULL || counts == NULL || packet_length == NULL
        || (header->type != BF_TYPE_EMG && header->type != BF_TYPE_IMU)) {
        return BF_ERR_ARGUMENT;
    }
    if (format == BF_FORMAT_INT16) {
        bytes_per_sample = 2;
        lowest = BF_INT16_MIN;
        highest = BF_INT16_MAX;
    } else if (format == BF_FORMAT_INT24) {
        bytes_per_sample = 3;
        lowest = BF_INT24_MIN;
        highest = BF_INT24_MAX;
    } else {
        return BF_ERR_ARGUMENT;
    }
    /* Division keeps the size check free of overflow for any n_channels, n_samples. */
    if (n_channels < 1 || n_channels > BF_MAX_CHANNELS || n_samples < 1
        || n_samples > BF_MAX_PAYLOAD_BYTES / (n_channels * bytes_per_sample)) {
        return BF_ERR_ARGUMENT;
    }
    n_values = n_channels * n_samples;
    for (i = 0; i < n_values; ++i) {
        if ((long)counts[i] < lowest || (long)counts[i] > highest) {
            return BF_ERR_ARGUMENT;
        }
    }
    status = begin_packet(&w, packet, capacity);
    if (status != BF_OK) {
        return status;
    }
    for (i = 0; i < n_values; ++i) {
        /* Two's complement bytes of the value, computed on the unsigned type (no shifts of negatives). */
        uint32_t bits = (uint32_t)counts[i];
        put_u8(&w, (uint8_t)(bits & 0xFFu));
        put_u8(&w, (uint8_t)((bits >> 8) & 0xFFu));
        if (bytes_per_sample == 3) {
            put_u8(&w, (uint8_t)((bits >> 16) & 0xFFu));
        }
    }
    return finish_packet(&w, header, packet_length);
}

bf_status bf_encode_status(const bf_header *header, const bf_status_info *status, uint8_t *packet,
                           size_t capacity, size_t *packet_length)
{
    bf_writer w;
    bf_status result;

    if (header == NULL || status == NULL || packet_length == NULL || header->type != BF_TYPE_STATUS) {
        return BF_ERR_ARGUMENT;
    }
    result = begin_packet(&w, packet, capacity);
    if (result != BF_OK) {
        return result;
    }
    put_u8(&w, status->battery_pct);
    put_u16(&w, status->battery_mv);
    put_u16(&w, status->lead_off_mask);
    put_u16(&w, status->saturation_mask);
    return finish_packet(&w, header, packet_length);
}

bf_status bf_encode_marker(const bf_header *header, uint8_t code, const char *label, uint8_t *packet,
                           size_t capacity, size_t *packet_length)
{
    bf_writer w;
    bf_status status;

    if (header == NULL || packet_length == NULL || header->type != BF_TYPE_MARKER || !string_fits(label)) {
        return BF_ERR_ARGUMENT;
    }
    status = begin_packet(&w, packet, capacity);
    if (status != BF_OK) {
        return status;
    }
    put_u8(&w, code);
    put_string(&w, label);
    return finish_packet(&w, header, packet_length);
}

bf_status bf_frame_packet(const uint8_t *packet, size_t packet_length, uint8_t *frame, size_t capacity,
                          size_t *frame_length)
{
    size_t encoded_length;
    bf_status status;

    if (packet == NULL || frame == NULL || frame_length == NULL) {
        return BF_ERR_ARGUMENT;
    }
    if (capacity < 1) {
        return BF_ERR_BUFFER;
    }
    status = bf_cobs_encode(packet, packet_length, frame, capacity - 1, &encoded_length);
    if (status != BF_OK) {
        return status;
    }
    frame[encoded_length] = 0x00;
    *frame_length = encoded_length + 1;
    return BF_OK;
}

/* --- decoding ---------------------------------------------------------------------------- */

static uint16_t get_u16(const uint8_t *bytes)
{
    return (uint16_t)(bytes[0] | (uint16_t)(bytes[1] << 8));
}

static uint32_t get_u32(const uint8_t *bytes)
{
    return (uint32_t)bytes[0] | ((uint32_t)bytes[1] << 8) | ((uint32_t)bytes[2] << 16)
           | ((uint32_t)bytes[3] << 24);
}

bf_status bf_decode_packet(const uint8_t *packet, size_t length, bf_header *header,
                           const uint8_t **payload)
{
    size_t payload_length;

    if (packet == NULL || header == NULL || payload == NULL) {
        return BF_ERR_ARGUMENT;
    }
    if (length < BF_MIN_PACKET_BYTES) {
        return BF_ERR_TOO_SHORT;
    }
    payload_length = get_u16(packet + 10);
    if (payload_length > BF_MAX_PAYLOAD_BYTES) {
        return BF_ERR_OVERSIZE;
    }
    if (length != BF_HEADER_BYTES + payload_length + BF_CRC_BYTES) {
        return BF_ERR_LENGTH;
    }
    if (get_u16(packet + BF_HEADER_BYTES + payload_length)
        != bf_crc16_xmodem(packet, BF_HEADER_BYTES + payload_length)) {
        return BF_ERR_CRC;
    }
    if ((packet[0] >> 4) != BF_PROTOCOL_MAJOR) {
        return BF_ERR_MAJOR_VERSION;
    }
    header->version = packet[0];
    header->type = packet[1];
    header->stream_id = packet[2];
    header->flags = packet[3];
    header->seq = get_u16(packet + 4);
    header->first_sample_index = get_u32(packet + 6);
    header->payload_length = (uint16_t)payload_length;
    *payload = packet + BF_HEADER_BYTES;
    return BF_OK;
}

bf_status bf_decode_control(uint8_t *frame, size_t length, bf_control *control)
{
    size_t packet_length;
    const uint8_t *payload;
    bf_header header;
    bf_status status;

    if (frame == NULL || control == NULL) {
        return BF_ERR_ARGUMENT;
    }
    if (length > BF_MAX_DECODE_FRAME_BYTES) {
        return BF_ERR_OVERSIZE;
    }
    status = bf_cobs_decode(frame, length, frame, length, &packet_length);
    if (status != BF_OK) {
        return status;
    }
    status = bf_decode_packet(frame, packet_length, &header, &payload);
    if (status != BF_OK) {
        return status;
    }
    if (header.type != BF_TYPE_CONTROL) {
        return BF_ERR_NOT_CONTROL;
    }
    if (header.payload_length < 1 || payload[0] < BF_COMMAND_START || payload[0] > BF_COMMAND_SET_RATE
        || (payload[0] == BF_COMMAND_SET_RATE && header.payload_length < 5)) {
        return BF_ERR_PAYLOAD;
    }
    control->header = header;
    control->command = payload[0];
    control->sample_rate_mhz = payload[0] == BF_COMMAND_SET_RATE ? get_u32(payload + 1) : 0;
    return BF_OK;
}
