"""Benchmarks (`make bench`): each module measures one area against a baseline
run in the same process and records its figures in `var/bench/results.json`."""
