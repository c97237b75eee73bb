"""Arbitrary style transfer: any painting at request time, on the embedded EfficientNet-Lite0.

WCT (Li et al., NeurIPS 2017, "Universal Style Transfer via Feature Transforms", arXiv:1705.08086):
decoders trained only to invert Lite0 features at a few taps (``decoder.py``, ``train_decoder.py``), the
whitening and colouring transform between encoder and decoder (``transform.py``), coarse to fine, served
by ``engine.py`` with a painting's statistics cached by its sha256 (``cache.py``). See
docs/arbitrary_style.md.
"""
