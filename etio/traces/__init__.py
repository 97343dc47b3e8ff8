"""Stage 1 of the paper's Figure 4: trace generation.

Datasets, target architectures, batched training, the generalization statistics (bias,
variance, accuracy and loss gaps), the centroid distance, and the resumable trace store.
"""
