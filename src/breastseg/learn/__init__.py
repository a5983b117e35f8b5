"""Learning: datasets, normalisation, splits, patch sampling and augmentation, losses, the trainer, bundles."""
