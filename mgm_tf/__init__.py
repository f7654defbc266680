"""mgm_tf: the MixGANMed hybrid GAN pipeline (DCGAN → conditional refinement GAN → quality
filter → SRGAN) for labelled, clearly marked synthetic medical images, in Keras 3 / TensorFlow.

Modules are imported on demand so `import mgm_tf` stays cheap; TensorFlow loads only with
the modules that need it (inputs, models, training, pipeline).
"""

__version__ = "0.1.0"
