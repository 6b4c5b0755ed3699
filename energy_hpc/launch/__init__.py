"""Planning and launching, above the Cell: the :class:`~energy_hpc.launch.plan.Plan` built once
from a sweep's cells, and the executors (one per cluster kind) that run it."""
