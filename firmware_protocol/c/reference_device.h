/*
 * The reference device of PROTOCOL.md section 7: a 2-channel int24 EMG stream at 2 kHz (an
 * ADS1292R-class front end) and two 6-axis int16 IMU streams at 100 Hz (MPU6050 at +-2 g and
 * +-250 deg/s), on a 2 kHz sample clock. Its INFO is byte-identical to the vector
 * `info_reference_device` of vectors/vectors.json.
 */
#ifndef BIOFEED_REFERENCE_DEVICE_H
#define BIOFEED_REFERENCE_DEVICE_H

#include "firmware_loop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_REFERENCE_TICK_RATE_HZ 2000u
#define BF_REFERENCE_DEVICE_ID "biofeed-ref-0001"
#define BF_REFERENCE_BOARD_PROFILE "ads1292r"
#define BF_REFERENCE_EMG_CHANNELS 2u
#define BF_REFERENCE_IMU_COUNT 2u

/* µV per count of the EMG front end: 2.42 V reference / gain 6 / 2^23. */
#define BF_REFERENCE_EMG_SCALE_UV ((float)(2.42e6 / 6.0 / 8388608.0))
/* MPU6050 at +-2 g: 16384 counts per g; at +-250 deg/s: 131 counts per deg/s. */
#define BF_REFERENCE_ACC_SCALE_G ((float)(1.0 / 16384.0))
#define BF_REFERENCE_GYRO_SCALE_DPS ((float)(1.0 / 131.0))

/* Fill *config with the reference device (stream ids 1 emg, 2 imu_thoracic, 3 imu_sacral). */
void bf_reference_device_config(bf_fw_config *config);

#ifdef __cplusplus
}
#endif

#endif /* BIOFEED_REFERENCE_DEVICE_H */
