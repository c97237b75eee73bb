"""Feature vectors of images and what is built on them: embeddings, nearest-neighbour galleries, 2-D maps."""
