/*
 * biofeed-fw-host: the firmware loop of the reference device on the host. Writes the serial byte
 * stream (one 0x00, then frames) to stdout and reads CONTROL frames from stdin when any arrive.
 *
 *   biofeed-fw-host [--duration SECONDS] [--realtime] [--seed N] [--button-every SECONDS]
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "firmware_loop.h"
#include "hal_host.h"
#include "reference_device.h"

/* Ticks the simulated clock advances between polls when not paced: 10 ms, as an MCU loop might. */
#define FAST_STEP_TICKS 20u
#define REALTIME_POLL_NS 1000000L
/* Longest run: 2^31 ticks at 2 kHz is about 12 days; a day is plenty. */
#define MAX_DURATION_S 86400.0

static const char usage[] =
    "usage: biofeed-fw-host [--duration SECONDS] [--realtime] [--seed N] [--button-every SECONDS]\n"
    "  --duration SECONDS      device seconds to run (default 10, at most 86400)\n"
    "  --realtime              pace to the wall clock (default: as fast as possible)\n"
    "  --seed N                seed of the synthetic signals (default 1)\n"
    "  --button-every SECONDS  press the marker button every SECONDS device seconds (default 0: never)\n"
    "Frames go to stdout; CONTROL frames are read from stdin.\n";

typedef struct options {
    double duration_s;
    int realtime;
    uint64_t seed;
    double button_every_s;
} options;

static int parse_seconds(const char *text, double lowest, double *seconds)
{
    char *end;
    double value;
    errno = 0;
    value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value >= lowest) || value > MAX_DURATION_S) {
        return 0;
    }
    *seconds = value;
    return 1;
}

static int parse_options(int argc, char **argv, options *opts)
{
    int i;
    opts->duration_s = 10.0;
    opts->realtime = 0;
    opts->seed = 1;
    opts->button_every_s = 0.0;
    for (i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--realtime") == 0) {
            opts->realtime = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (value == NULL) {
            fprintf(stderr, "biofeed-fw-host: %s needs a value (or is unknown)\n%s", arg, usage);
            return 0;
        } else if (strcmp(arg, "--duration") == 0) {
            if (!parse_seconds(value, 1e-3, &opts->duration_s)) {
                fprintf(stderr, "biofeed-fw-host: --duration must be 0.001..86400 seconds, got %s\n", value);
                return 0;
            }
            ++i;
        } else if (strcmp(arg, "--button-every") == 0) {
            if (!parse_seconds(value, 0.0, &opts->button_every_s)) {
                fprintf(stderr, "biofeed-fw-host: --button-every must be 0..86400 seconds, got %s\n", value);
                return 0;
            }
            ++i;
        } else if (strcmp(arg, "--seed") == 0) {
            char *end;
            errno = 0;
            opts->seed = strtoull(value, &end, 10);
            if (errno != 0 || end == value || *end != '\0' || value[0] == '-') {
                fprintf(stderr, "biofeed-fw-host: --seed must be a non-negative integer, got %s\n", value);
                return 0;
            }
            ++i;
        } else {
            fprintf(stderr, "biofeed-fw-host: unknown option %s\n%s", arg, usage);
            return 0;
        }
    }
    return 1;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) * 1e-9;
}

int main(int argc, char **argv)
{
    static bf_firmware fw; /* 6.9 kB: off the stack */
    static char output_buffer[1 << 16];
    options opts;
    bf_fw_config config;
    bf_host_hal host;
    bf_hal hal;
    uint32_t duration_ticks;
    struct timespec start;
    const struct timespec poll_interval = {0, REALTIME_POLL_NS};

    if (!parse_options(argc, argv, &opts)) {
        return 2;
    }
    setvbuf(stdout, output_buffer, _IOFBF, sizeof output_buffer);
    duration_ticks = (uint32_t)floor(opts.duration_s * BF_REFERENCE_TICK_RATE_HZ + 0.5);
    bf_reference_device_config(&config);
    bf_host_hal_init(&host, opts.seed, BF_REFERENCE_TICK_RATE_HZ, stdout, STDIN_FILENO,
                     (uint32_t)floor(opts.button_every_s * BF_REFERENCE_TICK_RATE_HZ + 0.5));
    hal = bf_host_hal_interface(&host);
    if (bf_fw_init(&fw, &config, &hal) != BF_OK) {
        fputs("biofeed-fw-host: the reference device configuration is invalid\n", stderr);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    bf_fw_poll(&fw);
    while (fw.ticks_processed < duration_ticks && !host.output_failed) {
        if (opts.realtime) {
            double due = floor(seconds_since(&start) * BF_REFERENCE_TICK_RATE_HZ);
            nanosleep(&poll_interval, NULL);
            host.clock_ticks = due >= (double)duration_ticks ? duration_ticks : (uint32_t)due;
        } else {
            host.clock_ticks = duration_ticks - host.clock_ticks < FAST_STEP_TICKS ? duration_ticks
                                                                                  : host.clock_ticks + FAST_STEP_TICKS;
        }
        bf_fw_poll(&fw);
        if (opts.realtime && fflush(stdout) != 0) {
            host.output_failed = 1;
        }
    }
    if (fflush(stdout) != 0 || host.output_failed) {
        fprintf(stderr, "biofeed-fw-host: writing to stdout failed: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
