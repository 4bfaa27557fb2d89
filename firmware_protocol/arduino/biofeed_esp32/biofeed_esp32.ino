// biofeed reference firmware for an ESP32 (Arduino core 2.x or 3.x).
//
// The device logic is the shared C firmware loop (../../c/firmware_loop.c) that the host build and
// the tests run too; this sketch is only its hardware abstraction (bf_hal):
//   - a hardware timer at BOARD_TICK_RATE_HZ wakes a sampling task that reads the EMG ADC pins
//     into a ring buffer (analogRead is not safe inside an ISR, so the ISR only notifies);
//   - MPU6050s over I2C, read when the loop's schedule asks (100 Hz);
//   - frames go out over USB serial (921600 baud) and BLE notifications (PROTOCOL.md 6.2);
//   - CONTROL frames come in over serial and the BLE control characteristic.
//
// Before building: `make -C firmware_protocol arduino-sources` copies the shared C files into src/.
// Settings: board_config.h.

#include <Arduino.h>
#include <BLE2902.h>
#include <BLEDevice.h>
#include <BLEServer.h>
#include <Wire.h>
#include <freertos/stream_buffer.h>

#include "board_config.h"
#include "src/firmware_loop.h"

#define BIOFEED_SERVICE_UUID "b10feed0-0000-4e4d-8f00-62696f666565"
#define BIOFEED_DATA_UUID "b10feed1-0000-4e4d-8f00-62696f666565"
#define BIOFEED_CONTROL_UUID "b10feed2-0000-4e4d-8f00-62696f666565"
#define NOTIFY_AFTER_MS 20u          // PROTOCOL.md 6.2: send a partly filled notification after 20 ms
#define NOTIFY_CAPACITY_BYTES 512u   // largest ATT payload we fill (MTU 515)
#define CONTROL_BUFFER_BYTES 256u

// --- EMG sampling ---------------------------------------------------------------------------

struct EmgSlot {
  volatile uint32_t tick;   // sample-clock tick this slot holds
  volatile bool valid;      // false while being written or when the sampling task was late
  int32_t counts[BOARD_EMG_CHANNELS];
};

static EmgSlot emg_ring[BOARD_EMG_RING_SLOTS];
static volatile uint32_t sampled_ticks = 0;  // ticks completed; written only by the sampling task
static TaskHandle_t sampling_task = nullptr;
static hw_timer_t *sample_timer = nullptr;

static void IRAM_ATTR on_sample_timer() {
  BaseType_t woken = pdFALSE;
  vTaskNotifyGiveFromISR(sampling_task, &woken);
  if (woken) {
    portYIELD_FROM_ISR();
  }
}

static void sampling_loop(void *) {
  for (;;) {
    // The notification count is the number of timer ticks since the last wake-up.
    uint32_t due = ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
    for (uint32_t late = 1; late < due; ++late) {
      // Ticks this task was too late for keep their place in time but hold no sample (a gap).
      EmgSlot &missed = emg_ring[sampled_ticks % BOARD_EMG_RING_SLOTS];
      missed.valid = false;
      missed.tick = sampled_ticks;
      sampled_ticks = sampled_ticks + 1;
    }
    EmgSlot &slot = emg_ring[sampled_ticks % BOARD_EMG_RING_SLOTS];
    slot.valid = false;
    slot.tick = sampled_ticks;
    for (size_t c = 0; c < BOARD_EMG_CHANNELS; ++c) {
      slot.counts[c] = (int32_t)analogReadMilliVolts(BOARD_EMG_PINS[c]) - BOARD_EMG_MIDPOINT_MV;
    }
    slot.valid = true;
    __sync_synchronize();  // the slot is complete before the loop (maybe on the other core) sees the tick
    sampled_ticks = sampled_ticks + 1;
  }
}

static void start_sample_clock() {
  xTaskCreatePinnedToCore(sampling_loop, "emg_sampling", 4096, nullptr, configMAX_PRIORITIES - 1, &sampling_task, 1);
#if ESP_ARDUINO_VERSION_MAJOR >= 3
  sample_timer = timerBegin(1000000);  // 1 MHz timer clock
  timerAttachInterrupt(sample_timer, &on_sample_timer);
  timerAlarm(sample_timer, 1000000 / BOARD_TICK_RATE_HZ, true, 0);
#else
  sample_timer = timerBegin(0, 80, true);  // 80 MHz APB / 80 = 1 MHz
  timerAttachInterrupt(sample_timer, &on_sample_timer, true);
  timerAlarmWrite(sample_timer, 1000000 / BOARD_TICK_RATE_HZ, true);
  timerAlarmEnable(sample_timer);
#endif
}

// --- IMUs -----------------------------------------------------------------------------------

static const uint8_t mpu_addresses[2] = {BOARD_MPU_THORACIC_ADDRESS, BOARD_MPU_SACRAL_ADDRESS};
static bool mpu_present[2] = {false, false};

static bool mpu_write(uint8_t address, uint8_t reg, uint8_t value) {
  Wire.beginTransmission(address);
  Wire.write(reg);
  Wire.write(value);
  return Wire.endTransmission() == 0;
}

// Wake the MPU6050 and set +-2 g, +-250 deg/s, a 44 Hz low-pass (anti-aliasing for 100 Hz) and a
// 100 Hz output rate; these match the scales 1/16384 g and 1/131 deg/s sent in INFO.
static bool mpu_begin(uint8_t address) {
  return mpu_write(address, 0x6B, 0x01)      // PWR_MGMT_1: wake, PLL on the X gyro
         && mpu_write(address, 0x1A, 0x03)   // CONFIG: DLPF 44 Hz (acc) / 42 Hz (gyro)
         && mpu_write(address, 0x19, 9)      // SMPLRT_DIV: 1 kHz / (1 + 9) = 100 Hz
         && mpu_write(address, 0x1B, 0x00)   // GYRO_CONFIG: +-250 deg/s
         && mpu_write(address, 0x1C, 0x00);  // ACCEL_CONFIG: +-2 g
}

// --- BLE ------------------------------------------------------------------------------------

static StreamBufferHandle_t ble_control_bytes = nullptr;

// Packs whole frames into notifications of up to MTU - 3 bytes (PROTOCOL.md 6.2).
class BleLink : public BLEServerCallbacks, public BLECharacteristicCallbacks {
 public:
  void begin(const char *name) {
    BLEDevice::init(name);
    BLEDevice::setMTU(247);
    server_ = BLEDevice::createServer();
    server_->setCallbacks(this);
    BLEService *service = server_->createService(BIOFEED_SERVICE_UUID);
    data_ = service->createCharacteristic(BIOFEED_DATA_UUID, BLECharacteristic::PROPERTY_NOTIFY);
    data_->addDescriptor(new BLE2902());
    BLECharacteristic *control = service->createCharacteristic(BIOFEED_CONTROL_UUID, BLECharacteristic::PROPERTY_WRITE);
    control->setCallbacks(this);
    service->start();
    BLEDevice::getAdvertising()->addServiceUUID(BIOFEED_SERVICE_UUID);
    BLEDevice::startAdvertising();
  }

  // Queue one whole frame; false when no central is connected.
  bool queue_frame(const uint8_t *frame, size_t length) {
    if (!connected_) {
      return false;
    }
    size_t room = notify_capacity();
    if (pending_length_ + length > room) {
      flush();
    }
    if (length > room) {
      // A frame larger than one notification (the reference INFO is 385 bytes; MTU 247 carries
      // 244) goes out in consecutive pieces; hosts decode notifications as a byte stream.
      for (size_t at = 0; at < length; at += room) {
        notify(frame + at, length - at < room ? length - at : room);
      }
      return true;
    }
    if (pending_length_ == 0) {
      pending_since_ms_ = millis();
    }
    memcpy(pending_ + pending_length_, frame, length);
    pending_length_ += length;
    return true;
  }

  // Call from loop(): sends a partly filled notification once it has waited NOTIFY_AFTER_MS.
  void service() {
    if (pending_length_ > 0 && millis() - pending_since_ms_ >= NOTIFY_AFTER_MS) {
      flush();
    }
  }

  void onConnect(BLEServer *) override {
    connected_ = true;
  }

  void onDisconnect(BLEServer *) override {
    connected_ = false;
    BLEDevice::startAdvertising();
  }

  // Runs in the BLE task: hand the bytes to the loop. The leading 0x00 ends any partial frame
  // that came in over serial, so bytes of the two links never merge into one frame.
  void onWrite(BLECharacteristic *characteristic) override {
    static const uint8_t delimiter = 0x00;
    xStreamBufferSend(ble_control_bytes, &delimiter, 1, 0);
    xStreamBufferSend(ble_control_bytes, characteristic->getData(), characteristic->getLength(), 0);
  }

 private:
  size_t notify_capacity() {
    uint16_t mtu = server_->getPeerMTU(server_->getConnId());
    size_t room = mtu > 23 ? mtu - 3u : 20u;
    return room < NOTIFY_CAPACITY_BYTES ? room : NOTIFY_CAPACITY_BYTES;
  }

  void notify(const uint8_t *data, size_t length) {
    data_->setValue(const_cast<uint8_t *>(data), length);
    data_->notify();
  }

  void flush() {
    if (pending_length_ > 0) {
      notify(pending_, pending_length_);
      pending_length_ = 0;
    }
  }

  BLEServer *server_ = nullptr;
  BLECharacteristic *data_ = nullptr;
  volatile bool connected_ = false;
  uint8_t pending_[NOTIFY_CAPACITY_BYTES];
  size_t pending_length_ = 0;
  uint32_t pending_since_ms_ = 0;
};

static BleLink ble;

// --- the HAL --------------------------------------------------------------------------------

static uint32_t hal_sample_ticks(void *) {
  return sampled_ticks;
}

static int hal_read_emg_counts(void *, uint32_t tick, int32_t *counts, size_t n_channels) {
  const EmgSlot &slot = emg_ring[tick % BOARD_EMG_RING_SLOTS];
  for (size_t c = 0; c < n_channels && c < BOARD_EMG_CHANNELS; ++c) {
    counts[c] = slot.counts[c];
  }
  // Checked after copying: the sampling task may have reused the slot (the loop fell behind).
  __sync_synchronize();
  return slot.valid && slot.tick == tick;
}

// Reads the sensor's latest output; at 100 Hz and a loop polled every few ms it is the sample
// of this tick to within one poll interval.
static int hal_read_imu_counts(void *, uint8_t imu_index, uint32_t, int16_t *counts) {
  uint8_t address = mpu_addresses[imu_index];
  uint8_t raw[14];
  Wire.beginTransmission(address);
  Wire.write(0x3B);  // ACCEL_XOUT_H: acc xyz, temperature, gyro xyz, big-endian
  if (Wire.endTransmission(false) != 0 || Wire.requestFrom(address, (uint8_t)14) != 14) {
    return 0;
  }
  for (size_t i = 0; i < sizeof raw; ++i) {
    raw[i] = (uint8_t)Wire.read();
  }
  for (size_t axis = 0; axis < 3; ++axis) {
    counts[axis] = (int16_t)((raw[2 * axis] << 8) | raw[2 * axis + 1]);
    counts[3 + axis] = (int16_t)((raw[8 + 2 * axis] << 8) | raw[8 + 2 * axis + 1]);
  }
  return 1;
}

static int hal_write_frame(void *, const uint8_t *frame, size_t length) {
  // Never block the loop on a full serial buffer (no host reading): drop the frame for serial.
  bool sent_serial = (size_t)Serial.availableForWrite() >= length && Serial.write(frame, length) == length;
  bool sent_ble = ble.queue_frame(frame, length);
  return sent_serial || sent_ble;
}

static size_t hal_read_control_bytes(void *, uint8_t *buffer, size_t capacity) {
  size_t n = xStreamBufferReceive(ble_control_bytes, buffer, capacity, 0);
  while (n < capacity && Serial.available() > 0) {
    buffer[n++] = (uint8_t)Serial.read();
  }
  return n;
}

static int hal_button_pressed(void *) {
  return digitalRead(BOARD_BUTTON_PIN) == LOW;
}

// --- device description -----------------------------------------------------------------------

static bf_channel_info emg_channels[BOARD_EMG_CHANNELS];
static const char *const imu_names[2] = {"imu_thoracic", "imu_sacral"};
static const char *const imu_sites[2] = {"T12/L1", "S1/S2"};
static const char *const imu_axis_names[BF_HAL_IMU_AXES] = {"acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"};
static bf_channel_info imu_channels[2][BF_HAL_IMU_AXES];
static char device_id[24];
static bf_firmware firmware;

static void describe_device(bf_fw_config *config) {
  memset(config, 0, sizeof *config);
  config->firmware_version[0] = 0;
  config->firmware_version[1] = 1;
  config->firmware_version[2] = 0;
  config->device_id = device_id;
  config->board_profile = BOARD_PROFILE;
  config->tick_rate_hz = BOARD_TICK_RATE_HZ;

  for (size_t c = 0; c < BOARD_EMG_CHANNELS; ++c) {
    emg_channels[c] = {BF_KIND_EMG, 1000.0f / BOARD_EMG_GAIN, BOARD_EMG_NAMES[c], BOARD_EMG_SITES[c]};
  }
  bf_fw_stream_config &emg = config->streams[config->n_streams++];
  emg.info = {1, "emg", BF_FORMAT_INT24, BOARD_TICK_RATE_HZ * 1000u, BOARD_EMG_CHANNELS, emg_channels};
  emg.source = BF_FW_SOURCE_EMG;
  emg.samples_per_packet = 20;
  emg.rail_low_counts = BOARD_EMG_LOWEST_MV - BOARD_EMG_MIDPOINT_MV;
  emg.rail_high_counts = BOARD_EMG_HIGHEST_MV - BOARD_EMG_MIDPOINT_MV;

  for (uint8_t imu = 0; imu < 2; ++imu) {
    if (!mpu_present[imu]) {
      continue;
    }
    for (size_t axis = 0; axis < BF_HAL_IMU_AXES; ++axis) {
      imu_channels[imu][axis] = {(uint8_t)(axis < 3 ? BF_KIND_ACC : BF_KIND_GYRO),
                                 axis < 3 ? 1.0f / 16384.0f : 1.0f / 131.0f, imu_axis_names[axis], imu_sites[imu]};
    }
    bf_fw_stream_config &stream = config->streams[config->n_streams++];
    stream.info = {(uint8_t)(2 + imu), imu_names[imu], BF_FORMAT_INT16, 100000u, BF_HAL_IMU_AXES, imu_channels[imu]};
    stream.source = BF_FW_SOURCE_IMU;
    stream.imu_index = imu;
    stream.samples_per_packet = 5;
    stream.rail_low_counts = -32768;
    stream.rail_high_counts = 32767;
  }
}

void setup() {
  Serial.begin(BOARD_SERIAL_BAUD);
  pinMode(BOARD_BUTTON_PIN, INPUT_PULLUP);
  analogReadResolution(12);
  analogSetAttenuation(ADC_11db);
  Wire.begin(BOARD_I2C_SDA, BOARD_I2C_SCL, BOARD_I2C_HZ);
  for (size_t imu = 0; imu < 2; ++imu) {
    mpu_present[imu] = mpu_begin(mpu_addresses[imu]);
  }

  uint64_t mac = ESP.getEfuseMac();
  snprintf(device_id, sizeof device_id, "esp32-%012llx", (unsigned long long)mac);
  char ble_name[32];
  snprintf(ble_name, sizeof ble_name, "%s%04x", BOARD_BLE_NAME_PREFIX, (unsigned)(mac >> 32) & 0xFFFFu);
  ble_control_bytes = xStreamBufferCreate(CONTROL_BUFFER_BYTES, 1);
  ble.begin(ble_name);

  bf_fw_config config;
  describe_device(&config);
  bf_hal hal = {nullptr,           hal_sample_ticks,       hal_read_emg_counts, hal_read_imu_counts,
                hal_write_frame,   hal_read_control_bytes, hal_button_pressed};
  if (bf_fw_init(&firmware, &config, &hal) != BF_OK) {
    // Only a wrong board_config.h gets here; say so on the serial console and stop.
    for (;;) {
      Serial.println("biofeed: board_config.h describes an invalid device");
      delay(1000);
    }
  }
  start_sample_clock();
}

void loop() {
  bf_fw_poll(&firmware);
  ble.service();
  delay(1);  // yield to the BLE stack; 1 ms is far inside the EMG ring's 128 ms of slack
}
