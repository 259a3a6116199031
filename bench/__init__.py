"""Benchmarks: refresh, query, export and dashboard speed at England-wide scale, side by side with the tools
users would pick instead. Run with `make bench` (python -m bench.run); results go to bench/RESULTS.md.

Every measurement runs in its own subprocess (bench.child) so peak memory is that contender's alone, and all
contenders run in the same invocation so the ratios between them hold on a shared machine whose absolute
speed drifts. The England-wide observations are SYNTHETIC (real LSOA codes, invented values) and live only
in the benchmark's own databases under bench/work/."""
