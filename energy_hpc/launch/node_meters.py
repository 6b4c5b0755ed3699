"""A meter on every node of a Ray cluster, started and stopped together, combined by the paper's rule."""

from __future__ import annotations

from typing import Any

from energy_hpc.config import EnergyConfig
from energy_hpc.energy import Reading, aggregate_nodes
from energy_hpc.energy.registry import meter_resolution, reads_whole_node


class _NodeMeterActor:
    """Lives on one node (pinned by its ``slurm_<node>`` resource) and owns that node's meters."""

    def __init__(self, energy: EnergyConfig, label: str | None = None) -> None:
        from energy_hpc.energy import create_meters
        from energy_hpc.energy.ledger import host_ledger

        self.meters = create_meters(energy)
        self.label = label
        self.ledger = host_ledger() if label is not None else None
        self.entry: Any = None

    def set_label(self, label: str) -> bool:
        """The cell this job measures next (the actors are shared by a packed job's cells)."""
        from energy_hpc.energy.ledger import host_ledger

        self.label, self.ledger = label, host_ledger()
        return True

    def start(self) -> bool:
        from energy_hpc.energy.host_share import snapshot

        if self.ledger is not None and self.label is not None:
            self.entry = self.ledger.open(self.label)  # this node's ledger
        for m in self.meters:
            m.start()
        self.cpu_before = snapshot()  # whose CPU work this node did meanwhile, as one node does
        return True

    def stop(self) -> list[dict[str, Any]]:
        from energy_hpc.energy.host_share import cpu_share, snapshot
        from energy_hpc.energy.ledger import note_overlaps
        from energy_hpc.energy.window import note_cpu_share

        cpu = cpu_share(self.cpu_before, snapshot(memory=True))
        readings = [m.stop() for m in reversed(self.meters)][::-1]
        note_cpu_share(readings, cpu)
        if self.ledger is not None:
            note_overlaps(readings, self.ledger.close(self.entry))
            self.entry = None
        return [r.to_dict() for r in readings]


class _Shared:
    """One start/stop of the node actors, however many configured meters read from it."""

    def __init__(self, actors: list[Any], n_meters: int) -> None:
        self.actors = actors
        self.n_meters = n_meters
        self.started = False
        self.pending: list[list[dict[str, Any]]] | None = None
        self.read = 0

    def start(self) -> None:
        import ray

        if not self.started:
            ray.get([a.start.remote() for a in self.actors])
            self.started, self.pending, self.read = True, None, 0

    def stop(self, index: int) -> list[dict[str, Any]]:
        import ray

        if self.pending is None:
            self.pending = ray.get([a.stop.remote() for a in self.actors])
            self.started = False
        out = [readings[index] for readings in self.pending]
        self.read += 1
        if self.read == self.n_meters:
            self.pending = None
        return out


class MultiNodeMeter:
    """Implements the meter protocol over all nodes: energy summed, duration the maximum."""

    def __init__(self, name: str, index: int, shared: _Shared, resolution_s: float = 0.0) -> None:
        self.name = name
        self.index = index
        self.shared = shared
        self.resolution_s = resolution_s
        self.scope = "node" if reads_whole_node([name]) else "job"

    def start(self) -> None:
        self.shared.start()

    def stop(self) -> Reading:
        per_node = [Reading.from_dict(d) for d in self.shared.stop(self.index)]
        combined = aggregate_nodes(per_node)
        combined.info["node_readings"] = [r.to_dict() for r in per_node]
        return combined


def multi_node_meters(nodes: list[str], energy: EnergyConfig,
                      label: str | None = None) -> list[MultiNodeMeter]:
    """One proxy per configured meter over per-node actors pinned by their ``slurm_<node>``
    resource; with ``label`` (the cell id) each node enters its windows in its own ledger."""
    import ray

    remote = ray.remote(num_cpus=0)(_NodeMeterActor)
    actors = [remote.options(resources={f"slurm_{n}": 0.001}).remote(energy, label) for n in nodes]
    shared = _Shared(actors, len(energy.meters))
    return [MultiNodeMeter(name, i, shared, meter_resolution(name)) for i, name in enumerate(energy.meters)]


def label_node_meters(meters: list[MultiNodeMeter], label: str) -> list[MultiNodeMeter]:
    """Tell every node which cell its next windows belong to (each node's ledger names it)."""
    import ray

    if meters:
        ray.get([a.set_label.remote(label) for a in meters[0].shared.actors])
    return meters
