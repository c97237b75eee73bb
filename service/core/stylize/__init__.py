"""Fast (feed-forward) style transfer: transform networks, training, ONNX export and the serving engine.

Submodules are imported directly (``service.core.stylize.nets``, ``.train``, ``.export``, ``.engine``);
this package deliberately imports nothing so that importing one part never pulls in the others.
"""
