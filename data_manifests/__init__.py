"""The dataset cards (one TOML file per dataset), shipped inside the wheel as
`mgm_tf.data_manifests` (pyproject.toml maps this folder there)."""
