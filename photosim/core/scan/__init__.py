"""Reading a library: walking folders, decoding, hashing, the decode workers and the scan pipeline."""
