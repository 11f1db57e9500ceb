"""This machine as the harness sees it: the accelerator the OS shows, the packages present, the
device fingerprint, CPU threads, child processes and signals, the cache folder. Standard library
(and psutil) at import: the noxfile reads accelerator.py and environment.py by path."""
