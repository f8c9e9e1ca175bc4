"""Feature extractors and their inputs: images -> feature vectors.

- :mod:`.inception` and :mod:`.inception_blocks`: the FID InceptionV3 in plain torch;
- :mod:`.inception_weights`: the FID weight file (address, digest, lookup);
- :mod:`.weights`, :mod:`.digests`, :mod:`.state_dicts`: weight files of any extractor (lookup,
  ``torch.hub`` download, hash-once digests, safe reading, layout checks);
- :mod:`.preprocess`: image validation, conversion and the TensorFlow 1 resize;
- :mod:`.precision`: full float32 during a forward pass (the TF32 policy);
- :mod:`.images`: image folders -> batches -> features.
"""
