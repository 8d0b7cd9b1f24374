"""Interventions applied during a run, at epoch boundaries (so every rank applies them at the same time).

* drug: a mechanism's parameter in the targeted regions and cell types is multiplied by a factor f(t):
  1 before the onset, then a linear ramp to `factor` over `ramp` ms (a step when ramp = 0);
* lesion: from time `at`, the cells of the lesioned regions are cut off — their spikes reach nobody and
  they receive no more input (synaptic, background or stimulation), so they fall silent unless they fire
  on their own — and lesioned tracts carry `scale` times their weight (events already on their way still
  arrive);
* stimulation: pulse trains of current, handled as stimuli by the cell group (recipe.pulse_trains_on).
"""

import numpy as np

from ..model.brain import tract_scales


class Interventions:
    def __init__(self, recipe, group, connections, poisson):
        self.recipe, self.group, self.connections, self.poisson = recipe, group, connections, poisson
        self.drugs, self.lesions = [], []
        items = recipe.config["interventions"]
        if not items:
            return
        index = group.order  # cell-by-cell index of each group node
        self.cell_of_node = cell_of_node = np.searchsorted(group.cell_start, index, side="right") - 1
        self.cell_region = recipe.regions_of(group.gids)
        populations = [recipe.population_of(int(g)) for g in group.gids]
        for i, item in enumerate(items):
            path = f"interventions[{i}]"
            if item["kind"] == "drug":
                targeted = np.array(
                    [recipe.intervention_targets(item, p, path) for p in populations], dtype=bool
                )
                for block in group.blocks:
                    if block.name != item["mechanism"]:
                        continue
                    instances = np.nonzero(targeted[cell_of_node[block.node]])[0] if targeted.size else []
                    if len(instances):
                        row = [p[0] for p in block.module.PARAMS].index(item["parameter"])
                        base = block.params[row, instances].copy()
                        self.drugs.append([item, block, row, instances, base, 1.0])
            elif item["kind"] == "lesion":
                regions = (
                    recipe.brain.region_indices(item["regions"], f"{path}.regions") if item["regions"] else []
                )
                scales = tract_scales(item["tracts"], recipe.brain.labels, f"{path}.tracts")
                self.lesions.append([item["at"], regions, scales, False])
        if self.lesions:  # what lesions change, to undo them when the simulation goes back in time
            self.intact = (
                connections.weight.copy(),
                [stream.weight.copy() for stream in poisson.streams],
                group.pulse[4].copy() if group.pulse_node.size else None,
            )

    def apply(self, t):
        """Bring every intervention to its state at time t (ms); True when a parameter changed (the
        integrator must then forget its multistep history)."""
        changed = False
        for drug in self.drugs:
            item, block, row, instances, base, current = drug
            factor = drug_factor(item, t)
            if factor != current:
                block.params[row, instances] = base * factor
                drug[5] = factor
                changed = True
        for lesion in self.lesions:
            at, regions, scales, done = lesion
            if not done and t >= at - 1e-9:
                self._lesion(regions, scales)
                lesion[3] = True
        return changed

    def rewind(self):
        """Undo every intervention (the simulation is set to an earlier state): the next `apply(t)` brings
        them to their state at t."""
        for drug in self.drugs:
            item, block, row, instances, base, _ = drug
            block.params[row, instances] = base
            drug[5] = 1.0
        if any(done for *_, done in self.lesions):
            weight, streams, amplitude = self.intact
            self.connections.weight[:] = weight
            for stream, w in zip(self.poisson.streams, streams):
                stream.weight = w.copy()
            if amplitude is not None:
                self.group.pulse[4][:] = amplitude
            for lesion in self.lesions:
                lesion[3] = False

    def _lesion(self, regions, scales):
        c = self.connections
        source, target = c.source_regions(self.recipe), c.target_regions(self.cell_region)
        c.weight[np.isin(source, regions) | np.isin(target, regions)] = 0.0
        inside = (source >= 0) & (target >= 0)
        c.weight[inside] *= scales[target[inside], source[inside]]
        cut = np.isin(self.cell_region, regions)  # local cells of the lesioned regions
        for stream in self.poisson.streams:
            if cut[np.searchsorted(self.group.gids, stream.spec.stream[1])]:
                stream.weight = np.zeros_like(stream.weight)  # drawn on, so the streams stay in step
        if self.group.pulse_node.size:
            amplitude = self.group.pulse[4]
            amplitude[cut[self.cell_of_node[self.group.pulse_node]]] = 0.0


def drug_factor(item, t):
    """The drug's factor at time t: 1 before onset, then a linear ramp to `factor` over `ramp` ms."""
    if t < item["onset"]:
        return 1.0
    if t >= item["onset"] + item["ramp"]:
        return item["factor"]
    return 1.0 + (item["factor"] - 1.0) * (t - item["onset"]) / item["ramp"]


def describe(item, tstop):
    """One line saying what an intervention does, for people."""
    where = (
        f"{_names(item.get('regions', 'all'), 'regions')}, {_names(item.get('cell_types', 'all'), 'types')}"
    )
    if item["kind"] == "drug":
        ramp = f" over {item['ramp']:g} ms" if item["ramp"] else ""
        return (
            f"drug: {item['mechanism']}.{item['parameter']} x {item['factor']:g} in {where}, "
            f"from {item['onset']:g} ms{ramp}"
        )
    if item["kind"] == "stimulation":
        stop = tstop if item["stop"] is None else item["stop"]
        return (
            f"stimulation: {item['amplitude']:g} nA pulses of {item['pulse_width']:g} ms at "
            f"{item['frequency']:g} Hz into {item['location']} of {where}, {item['start']:g}-{stop:g} ms"
        )
    return (
        f"lesion at {item['at']:g} ms: {_names(item['regions'] or 'no', 'regions')} cut off, "
        f"{len(item['tracts'])} tract(s) scaled"
    )


def _names(selection, what):
    if isinstance(selection, str):
        return f"{selection} {what}"
    shown = ", ".join(selection[:4]) + (f" and {len(selection) - 4} more" if len(selection) > 4 else "")
    return f"{what} {shown}"
