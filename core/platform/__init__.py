"""The machine: which accelerator, how many CPU threads, what a model will cost in memory, and the desktop
libraries Qt needs."""
