"""Rotations as arrays: unit quaternions ``(w, x, y, z)`` and 3x3 matrices, vectorised over samples.

A quaternion ``q`` (Hamilton convention) and its matrix ``R`` rotate sensor coordinates into earth
coordinates, ``v_earth = R v_sensor``, as imufusion and ahrs report them. The lumbar angles are the
intrinsic y-z'-x'' Cardan angles of a relative rotation (:func:`cardan_yzx_deg`), the sequence of
ISB's spine recommendation (flexion, then lateral bending, then axial rotation) written in the body
axes of docs/imu.md (x cranial, y left, z posterior).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "cardan_yzx_deg",
    "matrix_from_cardan_yzx_deg",
    "mean_quaternion",
    "quaternion_from_two_vectors",
    "quaternion_to_matrix",
    "rotation_about_axis",
    "vector_angle_deg",
]

_Array = npt.NDArray[np.float64]


def quaternion_to_matrix(quaternion: npt.ArrayLike) -> _Array:
    """Rotation matrices of unit quaternions.

    Parameters
    ----------
    quaternion : array_like, shape (..., 4)
        ``(w, x, y, z)``; normalised here.

    Returns
    -------
    ndarray, shape (..., 3, 3)
        ``R`` with ``v_earth = R @ v_sensor``.
    """
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    out = np.empty((*q.shape[:-1], 3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - w * z)
    out[..., 0, 2] = 2 * (x * z + w * y)
    out[..., 1, 0] = 2 * (x * y + w * z)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - w * x)
    out[..., 2, 0] = 2 * (x * z - w * y)
    out[..., 2, 1] = 2 * (y * z + w * x)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def quaternion_from_two_vectors(source: npt.ArrayLike, target: npt.ArrayLike) -> _Array:
    """The shortest-arc rotation that turns the direction of ``source`` into that of ``target``.

    Parameters
    ----------
    source, target : array_like, shape (3,)
        Non-zero vectors (any length).

    Returns
    -------
    ndarray, shape (4,)
        Unit quaternion ``(w, x, y, z)``; for opposite vectors, a half turn about an axis normal to them.

    Raises
    ------
    ValueError
        For a zero or non-finite vector.
    """
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    norms = np.array([np.linalg.norm(a), np.linalg.norm(b)])
    if not (np.isfinite(norms).all() and (norms > 0).all()):
        raise ValueError(f"need two finite non-zero vectors, got {a} and {b}")
    a, b = a / norms[0], b / norms[1]
    dot = float(a @ b)
    if dot < -1.0 + 1e-12:
        # Opposite: any axis normal to a will do; take the one furthest from a's largest component.
        helper = np.eye(3)[int(np.argmin(np.abs(a)))]
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return np.array([0.0, *axis])
    q = np.array([1.0 + dot, *np.cross(a, b)])
    return np.asarray(q / np.linalg.norm(q), dtype=np.float64)


def mean_quaternion(quaternions: npt.ArrayLike) -> _Array:
    """Mean orientation of nearby quaternions: their sign-aligned sum, normalised.

    Parameters
    ----------
    quaternions : array_like, shape (n, 4)
        Unit quaternions spread over a few degrees at most (a still period).

    Returns
    -------
    ndarray, shape (4,)
    """
    q = np.asarray(quaternions, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != 4:
        raise ValueError(f"need quaternions of shape (n, 4) with n >= 1, got {q.shape}")
    signs = np.where(q @ q[0] < 0, -1.0, 1.0)
    total = (q * signs[:, None]).sum(axis=0)
    return np.asarray(total / np.linalg.norm(total), dtype=np.float64)


def rotation_about_axis(axis_index: int, angle_deg: npt.ArrayLike) -> _Array:
    """Rotation matrices about a coordinate axis (right-hand rule).

    Parameters
    ----------
    axis_index : {0, 1, 2}
        x, y or z.
    angle_deg : array_like, shape (...)
        Angles in degrees.

    Returns
    -------
    ndarray, shape (..., 3, 3)
    """
    if axis_index not in (0, 1, 2):
        raise ValueError(f"axis_index must be 0 (x), 1 (y) or 2 (z), got {axis_index!r}")
    angle = np.radians(np.asarray(angle_deg, dtype=np.float64))
    c, s = np.cos(angle), np.sin(angle)
    i, j = (axis_index + 1) % 3, (axis_index + 2) % 3  # cyclic, so that every axis turns right-handed
    out = np.zeros((*angle.shape, 3, 3))
    out[..., axis_index, axis_index] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., j, i] = s
    out[..., i, j] = -s
    return out


def cardan_yzx_deg(matrix: npt.ArrayLike) -> _Array:
    """Intrinsic y-z'-x'' Cardan angles of rotation matrices: ``R = Ry(a) Rz(b) Rx(c)``.

    Parameters
    ----------
    matrix : array_like, shape (..., 3, 3)
        Rotation matrices.

    Returns
    -------
    ndarray, shape (3, ...)
        ``a`` (about y), ``b`` (about z'), ``c`` (about x'') in degrees; ``b`` in [-90, 90].
    """
    r = np.asarray(matrix, dtype=np.float64)
    about_y = np.arctan2(-r[..., 2, 0], r[..., 0, 0])
    about_z = np.arcsin(np.clip(r[..., 1, 0], -1.0, 1.0))
    about_x = np.arctan2(-r[..., 1, 2], r[..., 1, 1])
    return np.asarray(np.degrees(np.stack([about_y, about_z, about_x])), dtype=np.float64)


def matrix_from_cardan_yzx_deg(
    about_y_deg: npt.ArrayLike, about_z_deg: npt.ArrayLike, about_x_deg: npt.ArrayLike
) -> _Array:
    """``Ry(a) Rz(b) Rx(c)``, the inverse of :func:`cardan_yzx_deg`; angles in degrees, shape (...)."""
    return (
        rotation_about_axis(1, about_y_deg) @ rotation_about_axis(2, about_z_deg) @ rotation_about_axis(0, about_x_deg)
    )


def vector_angle_deg(a: npt.ArrayLike, b: npt.ArrayLike) -> _Array:
    """Angle between vectors in degrees (``atan2(|a x b|, a . b)``, accurate near 0 and 180).

    Parameters
    ----------
    a, b : array_like, shape (..., 3)
        Non-zero vectors, broadcastable.

    Returns
    -------
    ndarray, shape (...)
    """
    u = np.asarray(a, dtype=np.float64)
    v = np.asarray(b, dtype=np.float64)
    cross = np.linalg.norm(np.cross(u, v), axis=-1)
    dot = np.sum(u * v, axis=-1)
    return np.asarray(np.degrees(np.arctan2(cross, dot)), dtype=np.float64)
