/*
 * Hardware abstraction of the biofeed firmware loop: everything firmware_loop.c needs from a board.
 *
 * A struct of function pointers and one opaque context pointer handed back to each of them, so the
 * same loop runs on the host (hal_host.c: synthetic signals, stdout) and on an ESP32 (the Arduino
 * sketch: ADC, MPU6050, USB serial and BLE). No function may block for long: the loop calls them
 * from its poll.
 */
#ifndef BIOFEED_HAL_H
#define BIOFEED_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raw values of one IMU read: acc x, y, z then gyro x, y, z. */
#define BF_HAL_IMU_AXES 6u

typedef struct bf_hal {
    /* Handed back as the first argument of every function below. */
    void *context;

    /*
     * Ticks of the sample clock since the board started (wraps at 2^32). The loop processes every
     * tick up to this value on each poll; the sample clock runs at bf_fw_config.tick_rate_hz.
     */
    uint32_t (*sample_ticks)(void *context);

    /*
     * Counts of every EMG channel sampled at `tick` (a value sample_ticks() has passed). Returns 0
     * when that sample is not available (overwritten, ADC error): the loop then leaves a gap.
     */
    int (*read_emg_counts)(void *context, uint32_t tick, int32_t *counts, size_t n_channels);

    /*
     * Raw counts of IMU `imu_index` (0, 1, ...) for `tick`: BF_HAL_IMU_AXES values, acc xyz then
     * gyro xyz. Returns 0 on a failed read (the loop leaves a gap).
     */
    int (*read_imu_counts)(void *context, uint8_t imu_index, uint32_t tick, int16_t *counts);

    /*
     * Send one whole frame (COBS bytes and its 0x00 delimiter); every call carries exactly one
     * frame, so a BLE link can pack whole frames into notifications. Returns 0 when the frame was
     * dropped (link busy or absent); the loop counts it and the host sees the jump in seq.
     */
    int (*write_frame)(void *context, const uint8_t *frame, size_t length);

    /* Copy up to `capacity` received control bytes into `buffer`; returns how many (0: none now). */
    size_t (*read_control_bytes)(void *context, uint8_t *buffer, size_t capacity);

    /* Non-zero while the marker button is held; NULL when the board has no button. */
    int (*button_pressed)(void *context);
} bf_hal;

#ifdef __cplusplus
}
#endif

#endif /* BIOFEED_HAL_H */
