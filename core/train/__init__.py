"""The paper's three-phase training (workflow inference, artwork generation, learned regularisation), on one device
or under torchrun (DistributedDataParallel)."""
