/*
 * Host HAL of the firmware loop: deterministic synthetic EMG and IMU signals, frames written to a
 * FILE, CONTROL bytes read from a file descriptor, a button pressed on a fixed schedule, and a
 * sample clock that the caller (main_host.c) advances. Used by biofeed-fw-host and the tests.
 *
 * Signals are pure functions of (seed, tick), built from a counter-based integer PRNG (SplitMix64),
 * so they do not depend on which samples the loop reads or when:
 * - EMG, in counts of the reference device (0.048 µV per count): Gaussian-like noise of 1.5 µV RMS
 *   (a gel-electrode noise floor), a DC offset, and per channel in two of three 3-second windows a
 *   burst of 15-50 µV RMS lasting 0.4-1.2 s with 100 ms ramps.
 * - IMU, in MPU6050 counts: the gravity vector of a trunk that bends forward slowly (thoracic 5-30
 *   deg, sacral 3-13 deg, 12 s period) with small sway, the matching gyro rate, a per-axis gyro
 *   bias and sensor noise.
 */
#ifndef BIOFEED_HAL_HOST_H
#define BIOFEED_HAL_HOST_H

#include <stdint.h>
#include <stdio.h>

#include "hal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bf_host_hal {
    uint64_t seed;
    uint32_t tick_rate_hz;
    uint32_t clock_ticks;          /* the sample clock; the caller advances it */
    uint32_t button_period_ticks;  /* the button is held 100 ms every this many ticks; 0: never */
    FILE *output;                  /* frames go here */
    int output_failed;             /* a write to output failed */
    int control_fd;                /* CONTROL bytes come from here; -1: none */
} bf_host_hal;

/* Prepare *host; the clock starts at 0. */
void bf_host_hal_init(bf_host_hal *host, uint64_t seed, uint32_t tick_rate_hz, FILE *output, int control_fd,
                      uint32_t button_period_ticks);

/* The bf_hal whose functions work on *host (which must outlive it). */
bf_hal bf_host_hal_interface(bf_host_hal *host);

/* Synthetic EMG of `channel` at `tick`, in counts of the reference device. */
int32_t bf_host_emg_counts(uint64_t seed, uint32_t tick_rate_hz, uint32_t tick, size_t channel);

/* Synthetic MPU6050 counts (acc xyz, gyro xyz) of IMU `imu_index` (0 thoracic, 1 sacral) at `tick`. */
void bf_host_imu_counts(uint64_t seed, uint32_t tick_rate_hz, uint8_t imu_index, uint32_t tick,
                        int16_t counts[BF_HAL_IMU_AXES]);

#ifdef __cplusplus
}
#endif

#endif /* BIOFEED_HAL_HOST_H */
