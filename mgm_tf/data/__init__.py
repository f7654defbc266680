"""Getting a dataset ready for the GANs: dataset cards (`manifests`), finding and splitting files
(`sources`), decoding (`decode`), preprocessing (`preprocess`), decoding once into arrays
(`prepare`), each backend's input pipeline (`batches`, which uses `tfdata` on TensorFlow) and
test fixtures (`fixtures`). The one rule both input pipelines share, the batch size a set can
fill, is here, below both."""


def effective_batch_size(num_images: int, batch_size: int) -> int:
    """Tiny datasets (the demo) get one batch of all their images instead of zero full batches."""
    if num_images < 1:
        raise ValueError("no images to build a dataset from (check the split and class selection)")
    return min(batch_size, num_images)
