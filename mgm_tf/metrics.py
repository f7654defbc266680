"""Image-quality metrics. Super-resolution is always reported next to bicubic upsampling."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def psnr_ssim(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR (dB) and SSIM of uint8 images (tf.image, max_val 255, on all channels)."""
    reference = tf.convert_to_tensor(reference, tf.float32)
    candidate = tf.convert_to_tensor(candidate, tf.float32)
    return (tf.image.psnr(reference, candidate, max_val=255.0).numpy(),
            tf.image.ssim(reference, candidate, max_val=255.0).numpy())


def _summary(values: np.ndarray) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def super_resolution_quality(generator, prepared, split: str = "test", batch_size: int = 8) -> dict:
    """PSNR/SSIM of SR(LR) and of bicubic(LR) against the real HR image, on held-out real
    images (LR = antialiased bicubic 256→64, as in training)."""
    from mgm_tf import inputs
    from mgm_tf.synthesis import to_uint8

    rows = {"srgan": ([], []), "bicubic": ([], [])}
    count = 0
    for low, high in inputs.sr_dataset(prepared, split, batch_size=batch_size, full_images=True):
        reference = to_uint8(high)
        size = reference.shape[1:3]
        candidates = {"srgan": to_uint8(generator(low, training=False)),
                      "bicubic": to_uint8(tf.image.resize(low, size, method="bicubic"))}
        for name, candidate in candidates.items():
            psnr, ssim = psnr_ssim(reference, candidate)
            rows[name][0].extend(psnr.tolist())
            rows[name][1].extend(ssim.tolist())
        count += len(reference)
    return {"split": split, "num_images": count,
            **{name: {"psnr": _summary(np.array(psnr)), "ssim": _summary(np.array(ssim))}
               for name, (psnr, ssim) in rows.items()}}
