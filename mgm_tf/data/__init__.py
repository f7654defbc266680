"""Getting a dataset ready for the GANs: dataset cards (`manifests`), finding and splitting files
(`sources`), decoding (`decode`), preprocessing (`preprocess`), decoding once into arrays
(`prepare`), tf.data pipelines (`tfdata`) and test fixtures (`fixtures`)."""
