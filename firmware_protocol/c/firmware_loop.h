/*
 * The biofeed device logic, independent of the board: sample each stream on its schedule from one
 * sample clock, pack samples into blocks, number the packets, send INFO at start and every second,
 * STATUS every second, a MARKER on each button press, and obey received CONTROL frames.
 *
 * All state lives in a caller-provided bf_firmware (6.9 kB with the defaults below); the board
 * is reached only through the bf_hal given to bf_fw_init. Call bf_fw_poll often enough that
 * the HAL's sample buffers do not overrun (every few milliseconds on an MCU).
 *
 * Behaviour the spec leaves open, chosen here:
 * - The device streams from power-on (as if START had been received).
 * - Sample counters count device time: they keep running while stopped, after a failed read and
 *   across SET_RATE, so the host sees every pause as a gap (first_sample_index jumps).
 * - STOP pauses sample blocks only (the partial block is dropped); INFO, STATUS and MARKER go on.
 * - SET_RATE accepts 1 mHz .. tick_rate_hz x 1000 mHz for a known stream, drops that stream's
 *   partial block and samples at the new rate from the next tick; the INFO answer shows the rate
 *   now in force, so a refused SET_RATE is answered with the unchanged rate.
 * - Damaged or unknown CONTROL frames are ignored and counted (counters.n_control_rejected).
 */
#ifndef BIOFEED_FIRMWARE_LOOP_H
#define BIOFEED_FIRMWARE_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "biofeed_proto.h"
#include "hal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_FW_MAX_STREAMS 4u
#define BF_FW_MAX_CHANNELS 8u
#define BF_FW_MAX_SAMPLES_PER_PACKET 32u
/* CONTROL frames are about 20 bytes; room for fields a newer minor version may append. */
#define BF_FW_CONTROL_FRAME_BYTES 64u
/* A button level must hold this long before a change counts (contact bounce). */
#define BF_FW_BUTTON_DEBOUNCE_MS 50u
/* MARKER code of a button press (PROTOCOL.md 3.4) and its label. */
#define BF_FW_MARKER_BUTTON 1u
#define BF_FW_MARKER_BUTTON_LABEL "button"

/* Where a stream's samples come from. */
typedef enum bf_fw_source {
    BF_FW_SOURCE_EMG = 1, /* hal.read_emg_counts, all EMG channels at once */
    BF_FW_SOURCE_IMU = 2  /* hal.read_imu_counts of imu_index; the stream has BF_HAL_IMU_AXES channels */
} bf_fw_source;

typedef struct bf_fw_stream_config {
    bf_stream_info info;         /* as INFO describes it (channels must outlive the firmware) */
    uint8_t source;              /* bf_fw_source */
    uint8_t imu_index;           /* which IMU, for BF_FW_SOURCE_IMU */
    uint8_t samples_per_packet;  /* 1..BF_FW_MAX_SAMPLES_PER_PACKET (PROTOCOL.md section 7) */
    int32_t rail_low_counts;     /* a sample at or below this counts as saturated */
    int32_t rail_high_counts;    /* a sample at or above this counts as saturated */
} bf_fw_stream_config;

typedef struct bf_fw_config {
    uint8_t firmware_version[3];  /* major, minor, patch */
    const char *device_id;        /* must outlive the firmware */
    const char *board_profile;    /* must outlive the firmware */
    uint32_t tick_rate_hz;        /* rate of hal.sample_ticks; no stream samples faster */
    uint8_t n_streams;            /* 1..BF_FW_MAX_STREAMS; streams[0] places MARKERs in time */
    bf_fw_stream_config streams[BF_FW_MAX_STREAMS];
} bf_fw_config;

typedef struct bf_fw_counters {
    uint32_t n_frames_sent;
    uint32_t n_frames_dropped;    /* hal.write_frame refused them (their seq is skipped) */
    uint32_t n_samples_lost;      /* hal could not read them (their block was dropped) */
    uint32_t n_control_accepted;
    uint32_t n_control_rejected;  /* damaged, unknown or oversize CONTROL frames, ignored */
} bf_fw_counters;

/* Per-stream state; read-only for callers. */
typedef struct bf_fw_stream_state {
    int64_t schedule_mhz;        /* >= 0: a sample is due on this tick (see firmware_loop.c) */
    uint32_t sample_index;       /* the stream's sample counter: index of the next sample */
    uint32_t block_first_index;  /* sample index of block_counts[0] */
    uint8_t n_block_samples;     /* samples in block_counts so far */
    uint16_t saturation_mask;    /* channels at a rail since the last STATUS */
    int32_t block_counts[BF_FW_MAX_SAMPLES_PER_PACKET * BF_FW_MAX_CHANNELS]; /* sample-major */
} bf_fw_stream_state;

/* The whole firmware state. Fields are read-only for callers. */
typedef struct bf_firmware {
    bf_hal hal;
    bf_fw_config config;
    bf_stream_info stream_infos[BF_FW_MAX_STREAMS];  /* as INFO sends them: rates in force */
    bf_fw_stream_state streams[BF_FW_MAX_STREAMS];
    int started;                 /* the start-of-stream 0x00 and INFO have gone out */
    int running;                 /* sample blocks are sent (START / STOP) */
    uint32_t next_tick;          /* the HAL tick processed next */
    uint32_t ticks_processed;    /* device time in ticks since the start (wraps at 2^32) */
    uint32_t ticks_into_second;  /* ticks_processed modulo tick_rate_hz */
    uint16_t seq;                /* seq of the next packet */
    int button_level;            /* debounced button state */
    uint32_t button_changed_at;  /* ticks_processed at its last change */
    uint8_t control_frame[BF_FW_CONTROL_FRAME_BYTES];  /* CONTROL bytes up to the next 0x00 */
    size_t control_length;
    int control_overflow;        /* the current control frame did not fit: drop it */
    uint8_t packet[BF_MAX_PACKET_BYTES];
    uint8_t frame[BF_MAX_FRAME_BYTES];
    bf_fw_counters counters;
} bf_firmware;

/*
 * Check config and hal and prepare fw. Copies both (the strings and channel arrays they point to
 * must outlive fw). Returns BF_ERR_ARGUMENT, touching nothing the caller can use, when a stream is
 * unusable (see firmware_loop.c stream_config_valid) or a required HAL function is NULL.
 */
bf_status bf_fw_init(bf_firmware *fw, const bf_fw_config *config, const bf_hal *hal);

/*
 * Do all work that is due: on the first call send one 0x00 (flushes a receiver's partial frame)
 * and INFO; then process every sample tick up to hal.sample_ticks(), read the button and handle
 * received CONTROL frames.
 */
void bf_fw_poll(bf_firmware *fw);

#ifdef __cplusplus
}
#endif

#endif /* BIOFEED_FIRMWARE_LOOP_H */
