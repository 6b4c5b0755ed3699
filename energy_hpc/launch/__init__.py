"""Planning and launching, above the Cell: the :class:`~energy_hpc.launch.plan.Plan` built once
from a sweep's cells, the executors (one per cluster kind) that run it, and what they use: packing
and ``--time`` (``packing.py``), submitit (``slurm.py``), the job body on the allocation
(``job.py``), Ray inside it (``ray_cluster.py``) and the per-node meters (``node_meters.py``)."""
