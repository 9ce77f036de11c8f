"""Models: the in-process model cache, the weights registry (one downloader, sha256) and devices."""
