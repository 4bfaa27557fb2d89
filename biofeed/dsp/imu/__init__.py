"""IMU processing: gyroscope bias, orientation fusion, trunk and lumbar angles, posture and motion.

The chain for each IMU stream is :class:`~biofeed.dsp.imu.bias.GyroBiasTracker` ->
:class:`~biofeed.dsp.imu.fusion.OrientationFusion`; :class:`~biofeed.dsp.imu.angles.TrunkAngles` turns
the orientations of a thoracic and a sacral IMU into lumbar angles after an upright calibration
(:mod:`biofeed.dsp.imu.calibration`); :mod:`biofeed.dsp.imu.motion` and :mod:`biofeed.dsp.imu.gate`
gate the set point and flag movement; :func:`~biofeed.dsp.imu.trunk_motion.track_trunk` runs it all over
a whole recording. Conventions (axes, signs, units) are in docs/imu.md.
"""

__all__: list[str] = []
