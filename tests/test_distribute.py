"""MirroredStrategy over two logical CPU devices runs real train steps (own process: logical
devices must be configured before TensorFlow initialises)."""

import subprocess
import sys

SCRIPT = r"""
from pathlib import Path
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mgm_tf import dcgan, refinement
from mgm_tf.data import tfdata
from mgm_tf.data.prepare import PreparedDataset
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    trainer = refinement.ConditionalRefinementTrainer(refinement.build_conditional_generator(num_classes=2),
                                                    refinement.build_conditional_discriminator(num_classes=2))
    trainer.compile()
before = [w.numpy().copy() for w in trainer.generator.trainable_weights]
# the real input pipeline: uint8 grey batches, split across replicas, converted on each replica
images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8)
prepared = PreparedDataset(Path("."), "toy", ["a", "b"], 1, images, images, np.arange(8, dtype="int32") % 2,
                           np.array(["train"] * 8), [str(i) for i in range(8)], [str(i) for i in range(8)], {})
dataset = tfdata.gan_dataset(prepared, "train", batch_size=4, seed=0)
history = trainer.fit(dataset, epochs=1, verbose=0)
assert all(np.isfinite(v[-1]) for v in history.history.values()), history.history
assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, trainer.generator.trainable_weights))
assert int(trainer.g_optimizer.iterations.numpy()) == 2
print("MIRRORED_OK", history.history)
"""


def test_mirrored_strategy_two_logical_cpus():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "MIRRORED_OK" in result.stdout, result.stderr[-3000:]
