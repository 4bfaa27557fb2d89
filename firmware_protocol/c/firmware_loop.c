/* The biofeed device logic over a bf_hal. See firmware_loop.h for the behaviour. */
#include "firmware_loop.h"

#include <string.h>

/* Reading control bytes in chunks; a bounded number of chunks per poll keeps a poll short. */
#define CONTROL_CHUNK_BYTES 32u
#define CONTROL_CHUNKS_PER_POLL 8u

static uint8_t packet_type_of(const bf_stream_info *info)
{
    uint8_t c;
    /* PROTOCOL.md 3.2: type EMG for streams whose channels are EMG, IMU for the others. */
    for (c = 0; c < info->n_channels; ++c) {
        if (info->channels[c].kind != BF_KIND_EMG) {
            return BF_TYPE_IMU;
        }
    }
    return BF_TYPE_EMG;
}

static size_t bytes_per_sample(uint8_t sample_format)
{
    return sample_format == BF_FORMAT_INT16 ? 2u : 3u;
}

static int stream_config_valid(const bf_fw_stream_config *stream, uint32_t tick_rate_hz)
{
    const bf_stream_info *info = &stream->info;
    if (info->n_channels < 1 || info->n_channels > BF_FW_MAX_CHANNELS || info->channels == NULL
        || (info->sample_format != BF_FORMAT_INT16 && info->sample_format != BF_FORMAT_INT24)
        || info->sample_rate_mhz < 1 || info->sample_rate_mhz > (uint64_t)tick_rate_hz * 1000u
        || stream->samples_per_packet < 1 || stream->samples_per_packet > BF_FW_MAX_SAMPLES_PER_PACKET
        || (size_t)stream->samples_per_packet * info->n_channels * bytes_per_sample(info->sample_format)
               > BF_MAX_PAYLOAD_BYTES
        || stream->rail_low_counts >= stream->rail_high_counts) {
        return 0;
    }
    if (stream->source == BF_FW_SOURCE_IMU) {
        return info->n_channels == BF_HAL_IMU_AXES;
    }
    return stream->source == BF_FW_SOURCE_EMG;
}

/* --- sending ----------------------------------------------------------------------------- */

static bf_header next_header(const bf_firmware *fw, uint8_t type, uint8_t stream_id, uint8_t flags,
                             uint32_t first_sample_index)
{
    bf_header header;
    header.version = BF_VERSION_1_0;
    header.type = type;
    header.stream_id = stream_id;
    header.flags = flags;
    header.seq = fw->seq;
    header.first_sample_index = first_sample_index;
    header.payload_length = 0;
    return header;
}

/* Frame fw->packet (already encoded with status `encoded`) and hand it to the HAL. */
static void send_packet(bf_firmware *fw, bf_status encoded, size_t packet_length)
{
    size_t frame_length;
    /* Encoding only fails on a configuration bf_fw_init refused; nothing is sent, seq unchanged. */
    if (encoded != BF_OK
        || bf_frame_packet(fw->packet, packet_length, fw->frame, sizeof fw->frame, &frame_length) != BF_OK) {
        return;
    }
    if (fw->hal.write_frame(fw->hal.context, fw->frame, frame_length)) {
        ++fw->counters.n_frames_sent;
    } else {
        ++fw->counters.n_frames_dropped;
    }
    /* seq counts packets sent, so a frame the link refused shows up as lost on the host. */
    fw->seq = (uint16_t)(fw->seq + 1u);
}

static bf_status encode_info(bf_firmware *fw, uint8_t flags, size_t *packet_length)
{
    bf_device_info info;
    bf_header header = next_header(fw, BF_TYPE_INFO, 0, flags, 0);
    memcpy(info.firmware_version, fw->config.firmware_version, sizeof info.firmware_version);
    info.device_id = fw->config.device_id;
    info.board_profile = fw->config.board_profile;
    info.n_streams = fw->config.n_streams;
    info.streams = fw->stream_infos;
    return bf_encode_info(&header, &info, fw->packet, sizeof fw->packet, packet_length);
}

static void send_info(bf_firmware *fw, uint8_t flags)
{
    size_t packet_length = 0;
    bf_status encoded = encode_info(fw, flags, &packet_length);
    send_packet(fw, encoded, packet_length);
}

static void send_status(bf_firmware *fw, uint8_t s)
{
    bf_fw_stream_state *state = &fw->streams[s];
    bf_header header = next_header(fw, BF_TYPE_STATUS, fw->stream_infos[s].stream_id, 0, state->sample_index);
    bf_status_info status;
    size_t packet_length = 0;
    bf_status encoded;
    /* The HAL reports no battery or electrode contact: send them as unknown / in contact. */
    status.battery_pct = 255;
    status.battery_mv = 0;
    status.lead_off_mask = 0;
    status.saturation_mask = state->saturation_mask;
    state->saturation_mask = 0;
    encoded = bf_encode_status(&header, &status, fw->packet, sizeof fw->packet, &packet_length);
    send_packet(fw, encoded, packet_length);
}

static void send_block(bf_firmware *fw, uint8_t s)
{
    const bf_stream_info *info = &fw->stream_infos[s];
    bf_fw_stream_state *state = &fw->streams[s];
    bf_header header = next_header(fw, packet_type_of(info), info->stream_id, 0, state->block_first_index);
    size_t packet_length = 0;
    bf_status encoded = bf_encode_samples(&header, (bf_sample_format)info->sample_format, state->block_counts,
                                          info->n_channels, state->n_block_samples, fw->packet,
                                          sizeof fw->packet, &packet_length);
    send_packet(fw, encoded, packet_length);
}

static void send_button_marker(bf_firmware *fw)
{
    bf_header header = next_header(fw, BF_TYPE_MARKER, fw->stream_infos[0].stream_id, 0,
                                   fw->streams[0].sample_index);
    size_t packet_length = 0;
    bf_status encoded = bf_encode_marker(&header, BF_FW_MARKER_BUTTON, BF_FW_MARKER_BUTTON_LABEL, fw->packet,
                                         sizeof fw->packet, &packet_length);
    send_packet(fw, encoded, packet_length);
}

/* --- sampling ---------------------------------------------------------------------------- */

static int read_sample(bf_firmware *fw, uint8_t s, uint32_t tick, int32_t *values)
{
    const bf_fw_stream_config *stream = &fw->config.streams[s];
    int16_t imu[BF_HAL_IMU_AXES];
    size_t axis;
    if (stream->source == BF_FW_SOURCE_EMG) {
        return fw->hal.read_emg_counts(fw->hal.context, tick, values, fw->stream_infos[s].n_channels);
    }
    if (!fw->hal.read_imu_counts(fw->hal.context, stream->imu_index, tick, imu)) {
        return 0;
    }
    for (axis = 0; axis < BF_HAL_IMU_AXES; ++axis) {
        values[axis] = imu[axis];
    }
    return 1;
}

/* Clamp to the sensor's rails and the sample format, and note saturated channels. */
static void check_rails(bf_firmware *fw, uint8_t s, int32_t *values)
{
    const bf_fw_stream_config *stream = &fw->config.streams[s];
    int32_t format_high = fw->stream_infos[s].sample_format == BF_FORMAT_INT16 ? 32767 : 8388607;
    int32_t low = stream->rail_low_counts < -format_high - 1 ? -format_high - 1 : stream->rail_low_counts;
    int32_t high = stream->rail_high_counts > format_high ? format_high : stream->rail_high_counts;
    uint8_t c;
    for (c = 0; c < fw->stream_infos[s].n_channels; ++c) {
        if (values[c] <= low || values[c] >= high) {
            values[c] = values[c] < low ? low : (values[c] > high ? high : values[c]);
            fw->streams[s].saturation_mask = (uint16_t)(fw->streams[s].saturation_mask | (1u << c));
        }
    }
}

static void take_sample(bf_firmware *fw, uint8_t s, uint32_t tick)
{
    bf_fw_stream_state *state = &fw->streams[s];
    size_t n_channels = fw->stream_infos[s].n_channels;
    uint32_t index = state->sample_index;
    int32_t *values;

    state->sample_index = index + 1u;
    if (!fw->running) {
        return;
    }
    if (state->n_block_samples == 0) {
        state->block_first_index = index;
    }
    values = &state->block_counts[(size_t)state->n_block_samples * n_channels];
    if (!read_sample(fw, s, tick, values)) {
        /* Blocks hold contiguous samples only: drop the partial block; the next one starts later. */
        state->n_block_samples = 0;
        ++fw->counters.n_samples_lost;
        return;
    }
    check_rails(fw, s, values);
    state->n_block_samples = (uint8_t)(state->n_block_samples + 1u);
    if (state->n_block_samples == fw->config.streams[s].samples_per_packet) {
        send_block(fw, s);
        state->n_block_samples = 0;
    }
}

/*
 * One tick of the sample clock. Scheduling is a Bresenham-style accumulator per stream:
 * schedule_mhz grows by the stream's rate each tick and a sample is taken (and tick_rate x 1000
 * subtracted) when it is >= 0. Sample k then falls on the first tick at or after k / rate, every
 * stream's sample 0 on tick 0, and the mean rate is exact for any rate up to the tick rate.
 */
static void process_tick(bf_firmware *fw)
{
    const int64_t tick_rate_mhz = (int64_t)fw->config.tick_rate_hz * 1000;
    uint8_t s;

    if (fw->ticks_into_second == 0 && fw->ticks_processed != 0) {
        /* STATUS closes the second just ended, INFO opens the next (the Python simulator's order). */
        for (s = 0; s < fw->config.n_streams; ++s) {
            send_status(fw, s);
        }
        send_info(fw, BF_FLAG_PERIODIC);
    }
    for (s = 0; s < fw->config.n_streams; ++s) {
        bf_fw_stream_state *state = &fw->streams[s];
        if (state->schedule_mhz >= 0) {
            state->schedule_mhz -= tick_rate_mhz;
            take_sample(fw, s, fw->next_tick);
        }
        state->schedule_mhz += fw->stream_infos[s].sample_rate_mhz;
    }
    fw->next_tick += 1u;
    fw->ticks_processed += 1u;
    fw->ticks_into_second += 1u;
    if (fw->ticks_into_second == fw->config.tick_rate_hz) {
        fw->ticks_into_second = 0;
    }
}

/* --- inputs ------------------------------------------------------------------------------ */

static void drop_partial_blocks(bf_firmware *fw)
{
    uint8_t s;
    for (s = 0; s < fw->config.n_streams; ++s) {
        fw->streams[s].n_block_samples = 0;
    }
}

static void set_rate(bf_firmware *fw, uint8_t stream_id, uint32_t sample_rate_mhz)
{
    uint8_t s;
    if (sample_rate_mhz < 1 || sample_rate_mhz > (uint64_t)fw->config.tick_rate_hz * 1000u) {
        return;
    }
    for (s = 0; s < fw->config.n_streams; ++s) {
        if (fw->stream_infos[s].stream_id == stream_id) {
            fw->stream_infos[s].sample_rate_mhz = sample_rate_mhz;
            fw->streams[s].n_block_samples = 0;
            fw->streams[s].schedule_mhz = 0;
        }
    }
}

static void handle_control_frame(bf_firmware *fw)
{
    bf_control control;
    if (bf_decode_control(fw->control_frame, fw->control_length, &control) != BF_OK) {
        ++fw->counters.n_control_rejected;
        return;
    }
    ++fw->counters.n_control_accepted;
    switch (control.command) {
    case BF_COMMAND_START:
        fw->running = 1;
        break;
    case BF_COMMAND_STOP:
        fw->running = 0;
        drop_partial_blocks(fw);
        break;
    case BF_COMMAND_REQUEST_INFO:
        send_info(fw, 0);
        break;
    case BF_COMMAND_SET_RATE:
        set_rate(fw, control.header.stream_id, control.sample_rate_mhz);
        send_info(fw, 0);
        break;
    default:
        break;
    }
}

static void feed_control_byte(bf_firmware *fw, uint8_t byte)
{
    if (byte != 0x00) {
        if (fw->control_length < sizeof fw->control_frame) {
            fw->control_frame[fw->control_length++] = byte;
        } else {
            fw->control_overflow = 1;
        }
        return;
    }
    if (fw->control_overflow) {
        ++fw->counters.n_control_rejected;
    } else if (fw->control_length > 0) {
        /* Empty frames (0x00 0x00) are flushes, not errors. */
        handle_control_frame(fw);
    }
    fw->control_length = 0;
    fw->control_overflow = 0;
}

static void read_control(bf_firmware *fw)
{
    uint8_t chunk[CONTROL_CHUNK_BYTES];
    unsigned round;
    for (round = 0; round < CONTROL_CHUNKS_PER_POLL; ++round) {
        size_t n = fw->hal.read_control_bytes(fw->hal.context, chunk, sizeof chunk);
        size_t i;
        if (n == 0) {
            return;
        }
        for (i = 0; i < n && i < sizeof chunk; ++i) {
            feed_control_byte(fw, chunk[i]);
        }
    }
}

static void read_button(bf_firmware *fw)
{
    uint32_t debounce_ticks = fw->config.tick_rate_hz * BF_FW_BUTTON_DEBOUNCE_MS / 1000u;
    int level;
    if (fw->hal.button_pressed == NULL) {
        return;
    }
    level = fw->hal.button_pressed(fw->hal.context) ? 1 : 0;
    if (level == fw->button_level || (uint32_t)(fw->ticks_processed - fw->button_changed_at) < debounce_ticks) {
        return;
    }
    fw->button_level = level;
    fw->button_changed_at = fw->ticks_processed;
    if (level) {
        send_button_marker(fw);
    }
}

/* --- public ------------------------------------------------------------------------------ */

bf_status bf_fw_init(bf_firmware *fw, const bf_fw_config *config, const bf_hal *hal)
{
    uint8_t s;
    int has_imu = 0;
    size_t packet_length;

    if (fw == NULL || config == NULL || hal == NULL || hal->sample_ticks == NULL || hal->write_frame == NULL
        || hal->read_control_bytes == NULL || config->tick_rate_hz < 1 || config->tick_rate_hz > 1000000u
        || config->n_streams < 1 || config->n_streams > BF_FW_MAX_STREAMS) {
        return BF_ERR_ARGUMENT;
    }
    for (s = 0; s < config->n_streams; ++s) {
        if (!stream_config_valid(&config->streams[s], config->tick_rate_hz)) {
            return BF_ERR_ARGUMENT;
        }
        if (config->streams[s].source == BF_FW_SOURCE_EMG && hal->read_emg_counts == NULL) {
            return BF_ERR_ARGUMENT;
        }
        has_imu |= config->streams[s].source == BF_FW_SOURCE_IMU;
    }
    if (has_imu && hal->read_imu_counts == NULL) {
        return BF_ERR_ARGUMENT;
    }
    memset(fw, 0, sizeof *fw);
    fw->hal = *hal;
    fw->config = *config;
    for (s = 0; s < config->n_streams; ++s) {
        fw->stream_infos[s] = config->streams[s].info;
    }
    fw->running = 1;
    /* The INFO must encode (ids unique, strings short, fits a packet), or nothing would ever work. */
    if (encode_info(fw, 0, &packet_length) != BF_OK) {
        memset(fw, 0, sizeof *fw);
        return BF_ERR_ARGUMENT;
    }
    return BF_OK;
}

void bf_fw_poll(bf_firmware *fw)
{
    static const uint8_t flush[1] = {0x00};
    uint32_t pending;

    if (!fw->started) {
        fw->started = 1;
        fw->next_tick = fw->hal.sample_ticks(fw->hal.context);
        /* One 0x00 ends whatever partial frame a receiver holds (PROTOCOL.md section 1). */
        (void)fw->hal.write_frame(fw->hal.context, flush, sizeof flush);
        send_info(fw, 0);
    }
    pending = fw->hal.sample_ticks(fw->hal.context) - fw->next_tick;
    /* A clock that went backwards would read as ~2^32 ticks due; process none then. */
    if (pending < 0x80000000u) {
        while (pending-- > 0) {
            process_tick(fw);
        }
    }
    read_button(fw);
    read_control(fw);
}
