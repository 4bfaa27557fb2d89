/* Host HAL: synthetic signals, frames to a FILE, CONTROL from a file descriptor. See hal_host.h. */
#define _POSIX_C_SOURCE 200809L

#include "hal_host.h"

#include <math.h>
#include <poll.h>
#include <unistd.h>

#define PI 3.14159265358979323846
/* Picovolts per count of the reference EMG front end (0.048081 µV). */
#define EMG_PICOVOLTS_PER_COUNT 48081
#define EMG_FLOOR_NV 1500
/* Standard deviation of the sum of four uniform 16-bit values: 2 x 65536 / sqrt(12). */
#define NOISE_SUM_SD 37837
#define ACC_COUNTS_PER_G 16384.0
#define GYRO_COUNTS_PER_DPS 131.0

/* SplitMix64 finaliser: a well-mixed 64-bit value of x. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* Counter-based PRNG: an independent random 64-bit value for each (seed, a, b, stream). */
static uint64_t random_at(uint64_t seed, uint64_t a, uint64_t b, uint64_t stream)
{
    return mix64(mix64(mix64(seed ^ stream) + a) + b);
}

/* Approximately Gaussian, mean 0, standard deviation NOISE_SUM_SD: sum of four 16-bit uniforms. */
static int64_t gaussian_like(uint64_t bits)
{
    int64_t sum = 0;
    int k;
    for (k = 0; k < 4; ++k) {
        sum += (int64_t)((bits >> (16 * k)) & 0xFFFFu) - 32768;
    }
    return sum;
}

static int64_t counts_of_nv(int64_t nanovolts)
{
    return nanovolts * 1000 / EMG_PICOVOLTS_PER_COUNT;
}

/* Burst envelope of one channel at `tick`: 0..1024 of `*amplitude_nv`. */
static int64_t burst_envelope(uint64_t seed, uint32_t tick_rate_hz, uint32_t tick, size_t channel,
                              int64_t *amplitude_nv)
{
    uint32_t window_ticks = 3u * tick_rate_hz;
    uint32_t position = tick % window_ticks;
    uint64_t h = random_at(seed, tick / window_ticks, channel, 0xB0B5u);
    uint32_t start = (uint32_t)((h >> 8) % (3u * tick_rate_hz / 2u));
    uint32_t length = 2u * tick_rate_hz / 5u + (uint32_t)((h >> 24) % (4u * tick_rate_hz / 5u));
    uint32_t ramp = tick_rate_hz / 10u;
    uint32_t distance;

    *amplitude_nv = 15000 + (int64_t)((h >> 40) % 35001u);
    if (h % 3u == 0 || position < start || position >= start + length) {
        return 0;
    }
    distance = position - start < start + length - 1u - position ? position - start : start + length - 1u - position;
    return distance >= ramp ? 1024 : (int64_t)distance * 1024 / ramp;
}

int32_t bf_host_emg_counts(uint64_t seed, uint32_t tick_rate_hz, uint32_t tick, size_t channel)
{
    int64_t amplitude_nv;
    int64_t envelope = burst_envelope(seed, tick_rate_hz, tick, channel, &amplitude_nv);
    int64_t offset = (int64_t)(random_at(seed, channel, 0, 0x0FF5u) % 4001u) - 2000;
    int64_t floor_noise = gaussian_like(random_at(seed, tick, channel, 0xF100u)) * counts_of_nv(EMG_FLOOR_NV);
    int64_t burst_noise = gaussian_like(random_at(seed, tick, channel, 0xB125u)) * counts_of_nv(amplitude_nv);
    return (int32_t)(offset + floor_noise / NOISE_SUM_SD + burst_noise * envelope / 1024 / NOISE_SUM_SD);
}

static int16_t to_int16(double counts)
{
    double rounded = floor(counts + 0.5);
    return (int16_t)(rounded > 32767.0 ? 32767.0 : (rounded < -32768.0 ? -32768.0 : rounded));
}

void bf_host_imu_counts(uint64_t seed, uint32_t tick_rate_hz, uint8_t imu_index, uint32_t tick,
                        int16_t counts[BF_HAL_IMU_AXES])
{
    /* The sacrum moves less than the thorax when the lumbar spine flexes. */
    double base_deg = imu_index == 0 ? 5.0 : 3.0;
    double range_deg = imu_index == 0 ? 25.0 : 10.0;
    double t_s = (double)tick / (double)tick_rate_hz;
    double bend = 2.0 * PI / 12.0;
    double sway = 2.0 * PI * 0.25;
    double flexion_deg = base_deg + range_deg * (1.0 - cos(bend * t_s)) / 2.0 + 0.5 * sin(sway * t_s);
    double flexion_rate_dps = range_deg * bend * sin(bend * t_s) / 2.0 + 0.5 * sway * cos(sway * t_s);
    double flexion_rad = flexion_deg * PI / 180.0;
    double acc_g[3];
    double gyro_dps[3];
    size_t axis;

    acc_g[0] = sin(flexion_rad);
    acc_g[1] = 0.02 * sin(2.0 * PI * 0.13 * t_s);
    acc_g[2] = cos(flexion_rad);
    gyro_dps[0] = 0.3 * sin(2.0 * PI * 0.13 * t_s);
    gyro_dps[1] = flexion_rate_dps;
    gyro_dps[2] = 0.0;
    for (axis = 0; axis < 3; ++axis) {
        uint64_t noise = random_at(seed, tick, imu_index * 8u + axis, 0x1A0Cu);
        uint64_t gyro_noise = random_at(seed, tick, imu_index * 8u + axis, 0x6C70u);
        /* Gyro bias of up to +-1 deg/s per axis, constant per device. */
        double bias_dps = (double)(random_at(seed, imu_index, axis, 0xB1A5u) % 2001u) / 1000.0 - 1.0;
        counts[axis] = to_int16(acc_g[axis] * ACC_COUNTS_PER_G + (double)gaussian_like(noise) * 50.0 / NOISE_SUM_SD);
        counts[3 + axis] = to_int16((gyro_dps[axis] + bias_dps) * GYRO_COUNTS_PER_DPS
                                    + (double)gaussian_like(gyro_noise) * 7.0 / NOISE_SUM_SD);
    }
}

/* --- bf_hal functions -------------------------------------------------------------------- */

static uint32_t host_sample_ticks(void *context)
{
    return ((bf_host_hal *)context)->clock_ticks;
}

static int host_read_emg_counts(void *context, uint32_t tick, int32_t *counts, size_t n_channels)
{
    const bf_host_hal *host = (const bf_host_hal *)context;
    size_t c;
    for (c = 0; c < n_channels; ++c) {
        counts[c] = bf_host_emg_counts(host->seed, host->tick_rate_hz, tick, c);
    }
    return 1;
}

static int host_read_imu_counts(void *context, uint8_t imu_index, uint32_t tick, int16_t *counts)
{
    const bf_host_hal *host = (const bf_host_hal *)context;
    bf_host_imu_counts(host->seed, host->tick_rate_hz, imu_index, tick, counts);
    return 1;
}

static int host_write_frame(void *context, const uint8_t *frame, size_t length)
{
    bf_host_hal *host = (bf_host_hal *)context;
    if (host->output_failed || fwrite(frame, 1, length, host->output) != length) {
        host->output_failed = 1;
        return 0;
    }
    return 1;
}

static size_t host_read_control_bytes(void *context, uint8_t *buffer, size_t capacity)
{
    bf_host_hal *host = (bf_host_hal *)context;
    struct pollfd ready;
    ssize_t n;

    if (host->control_fd < 0) {
        return 0;
    }
    ready.fd = host->control_fd;
    ready.events = POLLIN;
    ready.revents = 0;
    /* Never block: the loop polls again soon. */
    if (poll(&ready, 1, 0) <= 0 || !(ready.revents & (POLLIN | POLLHUP))) {
        return 0;
    }
    n = read(host->control_fd, buffer, capacity);
    if (n <= 0) {
        /* End of input (or an error): stop asking. */
        host->control_fd = -1;
        return 0;
    }
    return (size_t)n;
}

static int host_button_pressed(void *context)
{
    const bf_host_hal *host = (const bf_host_hal *)context;
    uint32_t period = host->button_period_ticks;
    return period > 0 && host->clock_ticks >= period && host->clock_ticks % period < host->tick_rate_hz / 10u;
}

void bf_host_hal_init(bf_host_hal *host, uint64_t seed, uint32_t tick_rate_hz, FILE *output, int control_fd,
                      uint32_t button_period_ticks)
{
    host->seed = seed;
    host->tick_rate_hz = tick_rate_hz;
    host->clock_ticks = 0;
    host->button_period_ticks = button_period_ticks;
    host->output = output;
    host->output_failed = 0;
    host->control_fd = control_fd;
}

bf_hal bf_host_hal_interface(bf_host_hal *host)
{
    bf_hal hal;
    hal.context = host;
    hal.sample_ticks = host_sample_ticks;
    hal.read_emg_counts = host_read_emg_counts;
    hal.read_imu_counts = host_read_imu_counts;
    hal.write_frame = host_write_frame;
    hal.read_control_bytes = host_read_control_bytes;
    hal.button_pressed = host_button_pressed;
    return hal;
}
