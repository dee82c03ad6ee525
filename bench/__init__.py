"""Benchmarks of glccl-hf, run as modules from the repository root (`python -m bench.similarity`, `python -m
bench.search`, ...); `bench/gpu.sh` is the one GPU check. The small shared modules - `features` (scorer inputs),
`models` (random GLCCLs and the demo's processor), `browser` (headless Chromium on the search page) - serve the
benchmarks and the tests alike."""
