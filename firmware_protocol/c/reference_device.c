/* The reference device of PROTOCOL.md section 7. See reference_device.h. */
#include "reference_device.h"

#include <string.h>

static const bf_channel_info emg_channels[BF_REFERENCE_EMG_CHANNELS] = {
    {BF_KIND_EMG, BF_REFERENCE_EMG_SCALE_UV, "es_left", "erector spinae L1 left"},
    {BF_KIND_EMG, BF_REFERENCE_EMG_SCALE_UV, "es_right", "erector spinae L1 right"},
};

static const bf_channel_info thoracic_channels[BF_HAL_IMU_AXES] = {
    {BF_KIND_ACC, BF_REFERENCE_ACC_SCALE_G, "acc_x", "T12/L1"},
    {BF_KIND_ACC, BF_REFERENCE_ACC_SCALE_G, "acc_y", "T12/L1"},
    {BF_KIND_ACC, BF_REFERENCE_ACC_SCALE_G, "acc_z", "T12/L1"},
    {BF_KIND_GYRO, BF_REFERENCE_GYRO_SCALE_DPS, "gyro_x", "T12/L1"},
    {BF_KIND_GYRO, BF_REFERENCE_GYRO_SCALE_DPS, "gyro_y", "T12/L1"},
    {BF_KIND_GYRO, BF_REFERENCE_GYRO_SCALE_DPS, "gyro_z", "T12/L1"},
};

static const bf_channel_info sacral_channels[BF_HAL_IMU_AXES] = {
    {BF_KIND_ACC, BF_REFERENCE_ACC_SCALE_G, "acc_x", "S1/S2"},
    {BF_KIND_ACC, BF_REFERENCE_ACC_SCALE_G, "acc_y", "S1/S2"},
    {BF_KIND_ACC, BF_REFERENCE_ACC_SCALE_G, "acc_z", "S1/S2"},
    {BF_KIND_GYRO, BF_REFERENCE_GYRO_SCALE_DPS, "gyro_x", "S1/S2"},
    {BF_KIND_GYRO, BF_REFERENCE_GYRO_SCALE_DPS, "gyro_y", "S1/S2"},
    {BF_KIND_GYRO, BF_REFERENCE_GYRO_SCALE_DPS, "gyro_z", "S1/S2"},
};

static void set_imu_stream(bf_fw_stream_config *stream, uint8_t stream_id, const char *name, uint8_t imu_index,
                           const bf_channel_info *channels)
{
    stream->info.stream_id = stream_id;
    stream->info.name = name;
    stream->info.sample_format = BF_FORMAT_INT16;
    stream->info.sample_rate_mhz = 100000u;
    stream->info.n_channels = BF_HAL_IMU_AXES;
    stream->info.channels = channels;
    stream->source = BF_FW_SOURCE_IMU;
    stream->imu_index = imu_index;
    stream->samples_per_packet = 5;
    stream->rail_low_counts = -32768;
    stream->rail_high_counts = 32767;
}

void bf_reference_device_config(bf_fw_config *config)
{
    bf_fw_stream_config *emg = &config->streams[0];

    memset(config, 0, sizeof *config);
    config->firmware_version[0] = 0;
    config->firmware_version[1] = 1;
    config->firmware_version[2] = 0;
    config->device_id = BF_REFERENCE_DEVICE_ID;
    config->board_profile = BF_REFERENCE_BOARD_PROFILE;
    config->tick_rate_hz = BF_REFERENCE_TICK_RATE_HZ;
    config->n_streams = 3;

    emg->info.stream_id = 1;
    emg->info.name = "emg";
    emg->info.sample_format = BF_FORMAT_INT24;
    emg->info.sample_rate_mhz = BF_REFERENCE_TICK_RATE_HZ * 1000u;
    emg->info.n_channels = BF_REFERENCE_EMG_CHANNELS;
    emg->info.channels = emg_channels;
    emg->source = BF_FW_SOURCE_EMG;
    emg->samples_per_packet = 20;
    emg->rail_low_counts = -8388608;
    emg->rail_high_counts = 8388607;

    set_imu_stream(&config->streams[1], 2, "imu_thoracic", 0, thoracic_channels);
    set_imu_stream(&config->streams[2], 3, "imu_sacral", 1, sacral_channels);
}
