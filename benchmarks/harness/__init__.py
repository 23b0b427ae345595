"""What the HTTP load benchmarks share, one idea a module: ``databases`` (the SQLite file or the
PostgreSQL database, guarded against a concurrent run), ``seed`` (the benchmark tenant),
``server`` (the real service in a subprocess, from this or another source tree), ``routes``
(the endpoints driven), ``cpu`` (CPU and server-latency probes), ``load`` (the load driver and
a run's result), ``report`` (tables, legends, the target line), ``profile`` (the in-process
breakdown of an assignment) and ``cli`` (argparse types). The runners (``benchmarks.api``,
``benchmarks.api_booking``, ...) keep only their command line and orchestration."""
