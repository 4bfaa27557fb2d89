// Wiring and front-end settings of the reference ESP32 sketch. Change these, not the sketch.
#ifndef BIOFEED_BOARD_CONFIG_H
#define BIOFEED_BOARD_CONFIG_H

#include <stdint.h>

// Sample clock of the firmware loop (hardware timer). EMG is sampled on every tick.
#define BOARD_TICK_RATE_HZ 2000u

// EMG: 1 or 2 analog front ends (MyoWare 2.0 RAW output, or BioAmp EXG Pill output) on ADC1 pins.
// ADC2 cannot be used while the radio is on.
#define BOARD_EMG_CHANNELS 2u
static const uint8_t BOARD_EMG_PINS[2] = {36, 39};  // GPIO36 (VP, ADC1_CH0), GPIO39 (VN, ADC1_CH3)
static const char *const BOARD_EMG_NAMES[2] = {"es_left", "es_right"};
static const char *const BOARD_EMG_SITES[2] = {"erector spinae L1 left", "erector spinae L1 right"};
// The front ends centre their output at half the supply; counts are millivolts from this midpoint.
#define BOARD_EMG_MIDPOINT_MV 1650
// Voltage gain from the electrodes to the ADC pin. MyoWare 2.0 RAW: 200. BioAmp EXG Pill: set
// this to the gain of your build (see its documentation). One count (1 mV at the pin) is then
// 1000 / gain µV at the electrodes: 5 µV at gain 200, too coarse for relaxed lumbar muscles
// (docs: a 24-bit front end such as the ADS1292R is the reference).
#define BOARD_EMG_GAIN 200.0f
// Outside this range the ESP32 ADC (11 dB attenuation) is non-linear or clipped: saturation.
#define BOARD_EMG_LOWEST_MV 100
#define BOARD_EMG_HIGHEST_MV 3100
// calibration/boards/<name> describing this front end.
#define BOARD_PROFILE "esp32_myoware2"

// IMUs: MPU6050 on I2C; AD0 low = 0x68 (thoracic, T12/L1), AD0 high = 0x69 (sacral, S1/S2).
// A missing IMU is left out of INFO.
#define BOARD_I2C_SDA 21
#define BOARD_I2C_SCL 22
#define BOARD_I2C_HZ 400000u
#define BOARD_MPU_THORACIC_ADDRESS 0x68
#define BOARD_MPU_SACRAL_ADDRESS 0x69

// Marker button to ground (the BOOT button of most dev boards).
#define BOARD_BUTTON_PIN 0

#define BOARD_SERIAL_BAUD 921600u
#define BOARD_BLE_NAME_PREFIX "biofeed-"

// EMG samples buffered between the sampling task and the loop: 256 ticks = 128 ms of slack.
#define BOARD_EMG_RING_SLOTS 256u

#endif  // BIOFEED_BOARD_CONFIG_H
