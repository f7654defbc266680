"""The baselines of the paper's comparison that need their own training (cGAN alone, CycleGAN);
the other rows reuse the main run's networks (`mgm_tf.evaluation.evaluate`)."""
