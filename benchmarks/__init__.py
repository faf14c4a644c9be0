"""Benchmarks: each bench_<name>.py has a main() printing figures measured in one run."""
