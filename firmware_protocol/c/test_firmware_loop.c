/*
 * Checks the firmware loop (firmware_loop.c) with the reference device over a fake board: sample
 * schedule and values, block sizes, seq and sample counters, INFO/STATUS timing, button markers,
 * CONTROL handling, losses, saturation, and that the output does not depend on how often the loop
 * is polled.
 *
 * Prints one FAIL line per failed check and ends with `N passed, M failed`; exits 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firmware_loop.h"
#include "reference_device.h"
#include "test_tally.h"

#define NO_TICK 0xFFFFFFFFu
#define MAX_SCRIPT 8u

/* --- the fake board ---------------------------------------------------------------------- */

/* Control bytes the fake board receives once its clock reaches at_tick. */
typedef struct scripted_control {
    uint32_t at_tick;
    uint8_t bytes[128];
    size_t length;
} scripted_control;

typedef struct fake_board {
    uint32_t start_tick;   /* the board's clock when the firmware starts */
    uint32_t clock;
    uint8_t *output;
    size_t output_length;
    size_t output_capacity;
    uint32_t refuse_writes_from, refuse_writes_until; /* write_frame fails while clock is in [from, until) */
    uint32_t fail_emg_tick;                            /* read_emg_counts fails for this tick */
    uint32_t saturate_emg_tick;                        /* channel 1 reads 9000000 at this tick */
    uint32_t button_from[2], button_until[2];          /* button held while clock is in these ranges */
    scripted_control script[MAX_SCRIPT];
    size_t n_script;
    size_t script_done;     /* entries fully delivered */
    size_t script_position; /* bytes of script[script_done] delivered */
} fake_board;

/* What the fake EMG reads at a tick: easy to recompute, distinct per channel, and negative too. */
static int32_t emg_value(uint32_t tick, size_t channel)
{
    return (int32_t)(tick % 100000u) * 16 + (int32_t)channel - 1000;
}

static int16_t imu_value(uint8_t imu_index, uint32_t tick, size_t axis)
{
    return (int16_t)((int32_t)(tick % 20000u) + (int32_t)axis * 100 - (int32_t)imu_index * 20000);
}

static uint32_t fake_ticks(void *context)
{
    return ((fake_board *)context)->clock;
}

static int fake_read_emg(void *context, uint32_t tick, int32_t *counts, size_t n_channels)
{
    fake_board *board = (fake_board *)context;
    size_t c;
    if (tick == board->fail_emg_tick) {
        return 0;
    }
    for (c = 0; c < n_channels; ++c) {
        counts[c] = emg_value(tick, c);
    }
    if (tick == board->saturate_emg_tick) {
        counts[1] = 9000000;
    }
    return 1;
}

static int fake_read_imu(void *context, uint8_t imu_index, uint32_t tick, int16_t *counts)
{
    size_t axis;
    (void)context;
    for (axis = 0; axis < BF_HAL_IMU_AXES; ++axis) {
        counts[axis] = imu_value(imu_index, tick, axis);
    }
    return 1;
}

static int fake_write(void *context, const uint8_t *frame, size_t length)
{
    fake_board *board = (fake_board *)context;
    if (board->clock >= board->refuse_writes_from && board->clock < board->refuse_writes_until) {
        return 0;
    }
    if (board->output_length + length > board->output_capacity) {
        size_t capacity = 2 * (board->output_capacity + length);
        uint8_t *grown = realloc(board->output, capacity);
        if (grown == NULL) {
            return 0;
        }
        board->output = grown;
        board->output_capacity = capacity;
    }
    memcpy(board->output + board->output_length, frame, length);
    board->output_length += length;
    return 1;
}

static size_t fake_read_control(void *context, uint8_t *buffer, size_t capacity)
{
    fake_board *board = (fake_board *)context;
    scripted_control *entry;
    size_t n;
    if (board->script_done >= board->n_script || board->clock < board->script[board->script_done].at_tick) {
        return 0;
    }
    entry = &board->script[board->script_done];
    /* Hand out at most 5 bytes a call, so frames arrive split as from a UART. */
    n = entry->length - board->script_position;
    n = n < capacity ? n : capacity;
    n = n < 5 ? n : 5;
    memcpy(buffer, entry->bytes + board->script_position, n);
    board->script_position += n;
    if (board->script_position == entry->length) {
        ++board->script_done;
        board->script_position = 0;
    }
    return n;
}

static int fake_button(void *context)
{
    const fake_board *board = (const fake_board *)context;
    size_t i;
    for (i = 0; i < 2; ++i) {
        if (board->clock >= board->button_from[i] && board->clock < board->button_until[i]) {
            return 1;
        }
    }
    return 0;
}

static void fake_init(fake_board *board, uint32_t start_tick)
{
    memset(board, 0, sizeof *board);
    board->start_tick = start_tick;
    board->clock = start_tick;
    board->refuse_writes_from = board->refuse_writes_until = NO_TICK;
    board->fail_emg_tick = board->saturate_emg_tick = NO_TICK;
    board->button_from[0] = board->button_until[0] = NO_TICK;
    board->button_from[1] = board->button_until[1] = NO_TICK;
}

static bf_hal fake_hal(fake_board *board)
{
    bf_hal hal;
    hal.context = board;
    hal.sample_ticks = fake_ticks;
    hal.read_emg_counts = fake_read_emg;
    hal.read_imu_counts = fake_read_imu;
    hal.write_frame = fake_write;
    hal.read_control_bytes = fake_read_control;
    hal.button_pressed = fake_button;
    return hal;
}

/* Script a CONTROL frame for delivery once the clock reaches at_tick. */
static void script_control(fake_board *board, uint32_t at_tick, uint8_t command, uint8_t stream_id,
                           uint32_t rate_mhz)
{
    scripted_control *entry = &board->script[board->n_script++];
    bf_header header = {BF_VERSION_1_0, BF_TYPE_CONTROL, 0, 0, 0, 0, 0};
    uint8_t payload[5], packet[32];
    size_t packet_length;
    header.stream_id = stream_id;
    payload[0] = command;
    payload[1] = (uint8_t)(rate_mhz & 0xFFu);
    payload[2] = (uint8_t)((rate_mhz >> 8) & 0xFFu);
    payload[3] = (uint8_t)((rate_mhz >> 16) & 0xFFu);
    payload[4] = (uint8_t)(rate_mhz >> 24);
    entry->at_tick = at_tick;
    bf_encode_packet(&header, payload, command == BF_COMMAND_SET_RATE ? 5u : 1u, packet, sizeof packet,
                     &packet_length);
    bf_frame_packet(packet, packet_length, entry->bytes, sizeof entry->bytes, &entry->length);
}

static void script_bytes(fake_board *board, uint32_t at_tick, const uint8_t *bytes, size_t length)
{
    scripted_control *entry = &board->script[board->n_script++];
    entry->at_tick = at_tick;
    memcpy(entry->bytes, bytes, length);
    entry->length = length;
}

/* Run the firmware until the board's clock has advanced by n_ticks, polling every step ticks. */
static void run(bf_firmware *fw, fake_board *board, uint32_t n_ticks, uint32_t step)
{
    uint32_t end = board->start_tick + n_ticks;
    bf_fw_poll(fw);
    while (board->clock != end) {
        board->clock = end - board->clock < step ? end : board->clock + step;
        bf_fw_poll(fw);
    }
}

/* --- reading the output back ------------------------------------------------------------- */

typedef struct packet_list {
    bf_header *headers;
    uint8_t **payloads;
    size_t n;
    int starts_with_flush; /* the output began with a lone 0x00 */
    int all_decoded;       /* every frame decoded */
} packet_list;

static packet_list split_output(const fake_board *board)
{
    packet_list list = {NULL, NULL, 0, 0, 1};
    size_t start = 0, i;
    uint8_t packet[BF_MAX_FRAME_BYTES];
    list.starts_with_flush = board->output_length > 0 && board->output[0] == 0x00;
    list.headers = malloc((board->output_length / 2 + 1) * sizeof *list.headers);
    list.payloads = malloc((board->output_length / 2 + 1) * sizeof *list.payloads);
    for (i = 0; i < board->output_length; ++i) {
        size_t packet_length;
        const uint8_t *payload;
        bf_header header;
        if (board->output[i] != 0x00) {
            continue;
        }
        if (i > start) {
            if (bf_cobs_decode(board->output + start, i - start, packet, sizeof packet, &packet_length) == BF_OK
                && bf_decode_packet(packet, packet_length, &header, &payload) == BF_OK) {
                list.headers[list.n] = header;
                list.payloads[list.n] = malloc(header.payload_length + 1u);
                memcpy(list.payloads[list.n], payload, header.payload_length);
                ++list.n;
            } else {
                list.all_decoded = 0;
            }
        }
        start = i + 1;
    }
    list.all_decoded = list.all_decoded && start == board->output_length;
    return list;
}

static void free_packets(packet_list *list)
{
    size_t i;
    for (i = 0; i < list->n; ++i) {
        free(list->payloads[i]);
    }
    free(list->headers);
    free(list->payloads);
}

static int32_t sample_of(const uint8_t *payload, uint8_t format, size_t index)
{
    if (format == BF_FORMAT_INT16) {
        return (int16_t)(uint16_t)(payload[2 * index] | payload[2 * index + 1] << 8);
    }
    {
        uint32_t bits = (uint32_t)payload[3 * index] | (uint32_t)payload[3 * index + 1] << 8
                        | (uint32_t)payload[3 * index + 2] << 16;
        /* Sign-extend 24 -> 32 bits without shifting a negative value. */
        return (int32_t)(bits ^ 0x800000u) - 0x800000;
    }
}

static uint32_t info_rate_of_stream_1(const uint8_t *payload)
{
    /* Reference INFO: 3 version bytes, two strings, n_streams, stream_id, name "emg", format, rate. */
    size_t at = 3;
    at += 1u + payload[at];
    at += 1u + payload[at];
    at += 1u + 1u;
    at += 1u + payload[at];
    at += 1u;
    return (uint32_t)payload[at] | (uint32_t)payload[at + 1] << 8 | (uint32_t)payload[at + 2] << 16
           | (uint32_t)payload[at + 3] << 24;
}

static size_t count_type(const packet_list *list, uint8_t type, uint8_t stream_id)
{
    size_t i, n = 0;
    for (i = 0; i < list->n; ++i) {
        n += list->headers[i].type == type && list->headers[i].stream_id == stream_id;
    }
    return n;
}

/* Blocks of one stream: contiguous indices (except across expected gaps) and the right values. */
typedef struct block_check {
    size_t n_blocks;
    size_t n_samples;
    size_t n_gaps;
    size_t n_wrong_values;
    size_t n_wrong_sizes;
} block_check;

/* tick_of maps a sample index to the board tick it was taken at. */
static block_check check_blocks(const packet_list *list, const fake_board *board, uint8_t stream_id,
                                uint32_t (*tick_of)(uint32_t sample_index, const void *arg), const void *arg)
{
    block_check result = {0, 0, 0, 0, 0};
    uint32_t expected_index = 0;
    size_t i, k, c;
    int first = 1;
    uint8_t format = stream_id == 1 ? BF_FORMAT_INT24 : BF_FORMAT_INT16;
    size_t n_channels = stream_id == 1 ? 2u : 6u;
    size_t per_packet = stream_id == 1 ? 20u : 5u;

    for (i = 0; i < list->n; ++i) {
        const bf_header *h = &list->headers[i];
        size_t n_samples;
        if ((h->type != BF_TYPE_EMG && h->type != BF_TYPE_IMU) || h->stream_id != stream_id) {
            continue;
        }
        n_samples = h->payload_length / (n_channels * (format == BF_FORMAT_INT16 ? 2u : 3u));
        result.n_wrong_sizes += n_samples != per_packet || h->type != (stream_id == 1 ? BF_TYPE_EMG : BF_TYPE_IMU);
        result.n_gaps += !first && h->first_sample_index != expected_index;
        first = 0;
        for (k = 0; k < n_samples; ++k) {
            uint32_t tick = board->start_tick + tick_of(h->first_sample_index + (uint32_t)k, arg);
            for (c = 0; c < n_channels; ++c) {
                int32_t expected = stream_id == 1 ? emg_value(tick, c) : imu_value((uint8_t)(stream_id - 2), tick, c);
                if (stream_id == 1 && tick == board->saturate_emg_tick && c == 1) {
                    expected = 8388607; /* clamped to the rail */
                }
                result.n_wrong_values += sample_of(list->payloads[i], format, k * n_channels + c) != expected;
            }
        }
        expected_index = h->first_sample_index + (uint32_t)n_samples;
        ++result.n_blocks;
        result.n_samples += n_samples;
    }
    return result;
}

static uint32_t tick_every(uint32_t sample_index, const void *arg)
{
    return sample_index * *(const uint32_t *)arg;
}

static size_t seq_jumps(const packet_list *list)
{
    size_t i, n = 0;
    for (i = 1; i < list->n; ++i) {
        n += list->headers[i].seq != (uint16_t)(list->headers[i - 1].seq + 1u);
    }
    return n;
}

/* --- tests ------------------------------------------------------------------------------- */

static void start(bf_firmware *fw, fake_board *board, uint32_t start_tick)
{
    bf_fw_config config;
    bf_hal hal;
    fake_init(board, start_tick);
    hal = fake_hal(board);
    bf_reference_device_config(&config);
    if (bf_fw_init(fw, &config, &hal) != BF_OK) {
        fputs("the reference configuration is refused\n", stdout);
        exit(1);
    }
}

static void test_reference_stream(tally *t)
{
    static bf_firmware fw;
    fake_board board;
    packet_list list;
    block_check emg, imu;
    const uint32_t one = 1, twenty = 20;
    size_t i, n_periodic = 0, n_status_ok = 0;

    start(&fw, &board, 123456u);
    run(&fw, &board, 3 * BF_REFERENCE_TICK_RATE_HZ, 20);
    list = split_output(&board);
    check(t, list.starts_with_flush && list.all_decoded, "reference: output starts with 0x00 and every frame decodes");
    check(t, list.n > 0 && list.headers[0].type == BF_TYPE_INFO && list.headers[0].flags == 0
                 && list.headers[0].seq == 0,
          "reference: the first packet is INFO, seq 0, not periodic");
    check(t, seq_jumps(&list) == 0, "reference: seq counts every packet");
    emg = check_blocks(&list, &board, 1, tick_every, &one);
    check(t, emg.n_blocks == 300 && emg.n_samples == 6000 && emg.n_gaps == 0 && emg.n_wrong_sizes == 0,
          "reference: 3 s of EMG are 300 contiguous blocks of 20 samples (got %lu blocks, %lu gaps)",
          (unsigned long)emg.n_blocks, (unsigned long)emg.n_gaps);
    check(t, emg.n_wrong_values == 0, "reference: EMG sample k is the board's value at tick k (%lu wrong)",
          (unsigned long)emg.n_wrong_values);
    for (i = 2; i <= 3; ++i) {
        imu = check_blocks(&list, &board, (uint8_t)i, tick_every, &twenty);
        check(t, imu.n_blocks == 60 && imu.n_samples == 300 && imu.n_gaps == 0 && imu.n_wrong_sizes == 0
                     && imu.n_wrong_values == 0,
              "reference: IMU stream %lu is 60 blocks of 5 samples taken every 20th tick", (unsigned long)i);
    }
    for (i = 0; i < list.n; ++i) {
        const bf_header *h = &list.headers[i];
        n_periodic += h->type == BF_TYPE_INFO && h->flags == BF_FLAG_PERIODIC;
        /* STATUS at second s carries the stream's sample index there: 2000 s (EMG) or 100 s (IMU). */
        n_status_ok += h->type == BF_TYPE_STATUS
                       && h->first_sample_index % (h->stream_id == 1 ? 2000u : 100u) == 0
                       && list.payloads[i][0] == 255 && list.payloads[i][5] == 0 && list.payloads[i][6] == 0;
    }
    check(t, n_periodic == 2 && count_type(&list, BF_TYPE_INFO, 0) == 3,
          "reference: INFO at start and after each full second (periodic flag)");
    check(t, n_status_ok == 6, "reference: one STATUS per stream per second, battery unknown, no saturation");
    check(t, fw.counters.n_frames_sent == list.n && fw.counters.n_frames_dropped == 0,
          "reference: counters match the frames");
    free_packets(&list);
    free(board.output);
}

static void test_poll_step_invariance(tally *t)
{
    static bf_firmware fw;
    static const uint32_t steps[] = {1, 7, 20, 333, 5000};
    fake_board board;
    uint8_t *reference = NULL;
    size_t reference_length = 0, i;
    int same = 1;

    for (i = 0; i < sizeof steps / sizeof steps[0]; ++i) {
        start(&fw, &board, 0xFFFFF000u); /* the board's u32 tick counter wraps during the run */
        run(&fw, &board, 5000, steps[i]);
        if (reference == NULL) {
            reference = board.output;
            reference_length = board.output_length;
            continue;
        }
        same = same && board.output_length == reference_length
               && memcmp(board.output, reference, reference_length) == 0;
        free(board.output);
    }
    check(t, same && reference_length > 0, "the output is the same whether the loop is polled every 1 or 5000 ticks");
    free(reference);
}

static void test_control(tally *t)
{
    static bf_firmware fw;
    fake_board board;
    packet_list list;
    size_t i, n_answers = 0, emg_after_stop = 0, imu_after_stop = 0;
    uint32_t rates[3] = {0, 0, 0};
    uint32_t last_before_stop = 0, first_after_start = 0, first_at_new_rate = NO_TICK;
    block_check before;
    const uint32_t one = 1;
    uint8_t garbage[100];
    bf_header emg = {BF_VERSION_1_0, BF_TYPE_EMG, 1, 0, 0, 0, 0};
    uint8_t packet[32], bad[40];
    size_t packet_length, bad_length;

    start(&fw, &board, 0);
    script_control(&board, 1000, BF_COMMAND_STOP, 0, 0);
    script_control(&board, 2000, BF_COMMAND_START, 0, 0);
    script_control(&board, 3000, BF_COMMAND_REQUEST_INFO, 0, 0);
    script_control(&board, 4000, BF_COMMAND_SET_RATE, 1, 1000000u);
    script_control(&board, 4500, BF_COMMAND_SET_RATE, 1, 3000000u); /* faster than the clock: refused */
    /* At 5000: a frame with a bad CRC, a valid packet that is not CONTROL, 100 bytes without 0x00. */
    script_control(&board, 5000, BF_COMMAND_STOP, 0, 0);
    board.script[board.n_script - 1].bytes[3] ^= 0x40;
    bf_encode_packet(&emg, (const uint8_t *)"\x01\x02\x03", 3, packet, sizeof packet, &packet_length);
    bf_frame_packet(packet, packet_length, bad, sizeof bad, &bad_length);
    script_bytes(&board, 5000, bad, bad_length);
    memset(garbage, 0x55, sizeof garbage);
    garbage[sizeof garbage - 1] = 0x00;
    script_bytes(&board, 5000, garbage, sizeof garbage);
    run(&fw, &board, 6000, 20);

    list = split_output(&board);
    check(t, list.all_decoded && seq_jumps(&list) == 0, "control: every frame decodes and seq is contiguous");
    for (i = 0; i < list.n; ++i) {
        const bf_header *h = &list.headers[i];
        if (h->type == BF_TYPE_INFO && h->flags == 0 && i > 0 && n_answers < 3) {
            rates[n_answers++] = info_rate_of_stream_1(list.payloads[i]);
        }
        if (h->type == BF_TYPE_EMG && h->first_sample_index < 1000) {
            last_before_stop = h->first_sample_index;
        }
        if (h->type == BF_TYPE_EMG && h->first_sample_index >= 1000 && first_after_start == 0) {
            first_after_start = h->first_sample_index;
        }
        if (h->type == BF_TYPE_EMG && h->first_sample_index >= 4000 && first_at_new_rate == NO_TICK) {
            first_at_new_rate = h->first_sample_index;
        }
        emg_after_stop += h->type == BF_TYPE_EMG && h->first_sample_index >= 1000 && h->first_sample_index < 2000;
        imu_after_stop += h->type == BF_TYPE_IMU && h->first_sample_index >= 50 && h->first_sample_index < 100;
    }
    check(t, last_before_stop == 980 && first_after_start == 2000 && emg_after_stop == 0 && imu_after_stop == 0,
          "control: STOP at tick 1000 ends blocks, START at 2000 resumes with a gap (last %lu, first %lu)",
          (unsigned long)last_before_stop, (unsigned long)first_after_start);
    check(t, n_answers == 3 && rates[0] == 2000000u && rates[1] == 1000000u && rates[2] == 1000000u,
          "control: REQUEST_INFO and both SET_RATEs are answered with INFO showing the rate in force");
    before = check_blocks(&list, &board, 1, tick_every, &one);
    check(t, first_at_new_rate == 4000 && count_type(&list, BF_TYPE_EMG, 1) == 50 + 100 + 50,
          "control: at 1 kHz the EMG stream makes 50 blocks in the last 2 s (got %lu blocks in all)",
          (unsigned long)count_type(&list, BF_TYPE_EMG, 1));
    check(t, before.n_gaps == 1, "control: the EMG counter has exactly one gap (the STOP)");
    check(t, fw.counters.n_control_accepted == 5 && fw.counters.n_control_rejected == 3,
          "control: 5 CONTROL frames obeyed, 3 damaged or foreign ones ignored (got %lu, %lu)",
          (unsigned long)fw.counters.n_control_accepted, (unsigned long)fw.counters.n_control_rejected);
    free_packets(&list);
    free(board.output);
}

/* Sample index -> tick for the control test's EMG stream: 1 per tick, then 1 per 2 ticks from 4000. */
static uint32_t tick_of_rate_change(uint32_t sample_index, const void *arg)
{
    (void)arg;
    return sample_index < 4000 ? sample_index : 4000 + 2 * (sample_index - 4000);
}

static void test_control_sample_values(tally *t)
{
    static bf_firmware fw;
    fake_board board;
    packet_list list;
    block_check emg;

    start(&fw, &board, 0);
    script_control(&board, 4000, BF_COMMAND_SET_RATE, 1, 1000000u);
    run(&fw, &board, 6000, 20);
    list = split_output(&board);
    emg = check_blocks(&list, &board, 1, tick_of_rate_change, NULL);
    check(t, emg.n_samples == 5000 && emg.n_gaps == 0 && emg.n_wrong_values == 0,
          "control: after SET_RATE 1 kHz, EMG sample 4000 + k is taken at tick 4000 + 2k");
    free_packets(&list);
    free(board.output);
}

static void test_button(tally *t)
{
    static bf_firmware fw;
    fake_board board;
    packet_list list;
    size_t i, n_markers = 0;
    uint32_t at[4] = {0, 0, 0, 0};

    start(&fw, &board, 0);
    board.button_from[0] = 1000;
    board.button_until[0] = 1150;
    /* A bounce 10 ticks (5 ms) after release: shorter than the debounce time, so no marker. */
    board.button_from[1] = 1160;
    board.button_until[1] = 1170;
    run(&fw, &board, 2000, 10);
    board.button_from[1] = 3000;
    board.button_until[1] = NO_TICK;
    board.start_tick = 2000;
    run(&fw, &board, 2000, 10);
    list = split_output(&board);
    for (i = 0; i < list.n; ++i) {
        if (list.headers[i].type == BF_TYPE_MARKER && n_markers < 4) {
            at[n_markers++] = list.headers[i].first_sample_index;
            check(t, list.headers[i].stream_id == 1 && list.payloads[i][0] == BF_FW_MARKER_BUTTON
                         && list.payloads[i][1] == 6 && memcmp(list.payloads[i] + 2, "button", 6) == 0,
                  "button: MARKER on the EMG stream with code 1 and label \"button\"");
        }
    }
    check(t, n_markers == 2 && at[0] == 1000 && at[1] == 3000,
          "button: two presses give two MARKERs at EMG samples 1000 and 3000 (got %lu)", (unsigned long)n_markers);
    free_packets(&list);
    free(board.output);
}

static void test_losses_and_saturation(tally *t)
{
    static bf_firmware fw;
    fake_board board;
    packet_list list;
    block_check emg;
    const uint32_t one = 1;
    size_t i, n_saturated_status = 0, n_jumps;
    int saw_778 = 0;

    start(&fw, &board, 0);
    board.refuse_writes_from = 500;
    board.refuse_writes_until = 600;
    board.fail_emg_tick = 777;
    board.saturate_emg_tick = 1500;
    run(&fw, &board, 4000, 20);
    list = split_output(&board);
    emg = check_blocks(&list, &board, 1, tick_every, &one);
    n_jumps = seq_jumps(&list);
    check(t, n_jumps == 1 && fw.counters.n_frames_dropped > 0,
          "losses: frames the link refused leave one jump in seq (%lu jumps, %lu dropped)", (unsigned long)n_jumps,
          (unsigned long)fw.counters.n_frames_dropped);
    for (i = 0; i < list.n; ++i) {
        const bf_header *h = &list.headers[i];
        saw_778 |= h->type == BF_TYPE_EMG && h->first_sample_index == 778;
        if (h->type == BF_TYPE_STATUS && h->stream_id == 1 && list.payloads[i][5] == 0x02 && list.payloads[i][6] == 0) {
            n_saturated_status += h->first_sample_index == 2000;
        }
    }
    check(t, saw_778 && fw.counters.n_samples_lost == 1 && emg.n_wrong_values == 0,
          "losses: a failed EMG read drops its partial block and the next block starts at sample 778");
    check(t, n_saturated_status == 1, "saturation: the STATUS after the second with a railed channel 1 flags it");
    free_packets(&list);
    free(board.output);
}

static void test_init_refuses(tally *t)
{
    static bf_firmware fw;
    fake_board board;
    bf_fw_config config;
    bf_hal hal;

    fake_init(&board, 0);
    hal = fake_hal(&board);
    bf_reference_device_config(&config);
    config.streams[0].info.sample_rate_mhz = 2000001u;
    check(t, bf_fw_init(&fw, &config, &hal) == BF_ERR_ARGUMENT, "init: a stream faster than the clock is refused");
    bf_reference_device_config(&config);
    config.streams[1].samples_per_packet = 0;
    check(t, bf_fw_init(&fw, &config, &hal) == BF_ERR_ARGUMENT, "init: 0 samples per packet is refused");
    bf_reference_device_config(&config);
    config.streams[2].info.n_channels = 5;
    check(t, bf_fw_init(&fw, &config, &hal) == BF_ERR_ARGUMENT, "init: an IMU stream of 5 channels is refused");
    bf_reference_device_config(&config);
    config.streams[2].info.stream_id = 2;
    check(t, bf_fw_init(&fw, &config, &hal) == BF_ERR_ARGUMENT, "init: repeated stream ids are refused");
    bf_reference_device_config(&config);
    hal.write_frame = NULL;
    check(t, bf_fw_init(&fw, &config, &hal) == BF_ERR_ARGUMENT, "init: a HAL without write_frame is refused");
    hal = fake_hal(&board);
    hal.button_pressed = NULL;
    check(t, bf_fw_init(&fw, &config, &hal) == BF_OK, "init: a board without a button is fine");
}

int main(void)
{
    tally t = {0, 0};
    test_reference_stream(&t);
    test_poll_step_invariance(&t);
    test_control(&t);
    test_control_sample_values(&t);
    test_button(&t);
    test_losses_and_saturation(&t);
    test_init_refuses(&t);
    return report(&t);
}
