"""Feature extractors and their inputs: images -> feature vectors.

- :mod:`.inception` and :mod:`.inception_blocks`: the FID InceptionV3 in plain torch;
- :mod:`.inception_weights`: the FID weight file (address, digest, lookup);
- :mod:`.dinov2`, :mod:`.clip` (and :mod:`.encoder`, :mod:`.vit_blocks`): DINOv2 and CLIP's image
  tower in plain torch; :mod:`.dinov2_weights`, :mod:`.clip_weights`: their published files and
  the layouts they come in;
- :mod:`.weights`, :mod:`.digests`, :mod:`.state_dicts`, :mod:`.torchscript`: weight files of any
  extractor (lookup, ``torch.hub`` download, hash-once digests, safe reading of torch, safetensors
  and TorchScript files, layout checks and conversions);
- :mod:`.preprocess`, :mod:`.pil_resize`: image validation, conversion, the TensorFlow 1 resize,
  Pillow's bicubic resizes on ``uint8``;
- :mod:`.precision`: full float32 during a forward pass (the TF32 policy);
- :mod:`.images`: image folders -> batches -> features.
"""
