"""The core library: image I/O, backbones and algorithms. No server imports here (tests check it)."""
