"""Getting a dataset ready for the GANs: dataset cards (`manifests`), finding and splitting files
(`sources`), decoding (`decode`), preprocessing (`preprocess`), decoding once into arrays
(`prepare`), each backend's input pipeline (`batches`, which uses `tfdata` on TensorFlow) and
test fixtures (`fixtures`). The one rule both input pipelines share, the batch size a set can
fill, is here, below both."""

import functools


def effective_batch_size(num_images: int, batch_size: int) -> int:
    """The batch a stage trains with: tiny datasets (the demo) get one batch of all their images
    instead of zero full batches, and under data parallelism the batch is a multiple of the
    devices it is split over (rounded down, at least one image per device), said once."""
    if num_images < 1:
        raise ValueError("no images to build a dataset from (check the split and class selection)")
    from mgm_tf.backend import device_count

    size, devices = min(batch_size, num_images), device_count()
    if devices == 1:
        return size
    if num_images < devices:
        raise ValueError(f"{num_images} image(s) cannot be split over {devices} devices; train on fewer devices "
                         "(--devices) or with more images")
    rounded = max(devices, size // devices * devices)
    if rounded != size:
        _say_rounded(size, rounded, devices)
    return rounded


@functools.lru_cache(maxsize=None)
def _say_rounded(batch_size: int, rounded: int, devices: int) -> None:
    print(f"batch size {batch_size} → {rounded}: a multiple of the {devices} devices it is split over")
