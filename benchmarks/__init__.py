"""Side-by-side performance benchmarks for airflow-provider-sgseg: ``make bench``.

Not part of the test suite. Each module measures one claim and returns a
:class:`benchmarks.report.Section`; ``python -m benchmarks`` prints the table and writes
``benchmarks/RESULTS.md``.
"""
