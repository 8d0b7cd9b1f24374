"""The EEG forward model of the summary: MNE-Python's sphere-model forward solution of one current dipole
per region, at the region's centre, to the 10-20 electrodes of MNE's standard_1020 montage.

Head model: ``mne.make_sphere_model("auto", "auto", info)``, a sphere fitted to the 19 electrode positions
(radius about 96 mm), with MNE's default four shells (SHELLS): relative radii 0.90, 0.92, 0.97, 1.0
(brain, CSF, skull, scalp) and conductivities 0.33, 1.0, 0.004, 0.33 S/m; the electrodes are then moved
onto its scalp along their rays from its origin (the montage's points lie 10 mm inside to 10 mm outside
it), so that each potential is the model's scalp potential.

Frames: region centres are taken in mm in an MNI-like frame (x right, y anterior, z superior), as the
shipped synthetic connectome and atlas centroids are, read as the MRI frame of MNE's template fsaverage
(MNI305) and put into the montage's head frame by fsaverage's head<->MRI transform (MNE's
``trans="fsaverage"``). A frame whose right hemisphere does not lie towards +x (TVB's connectivity_76:
x anterior, y left) is first turned about z by the quarter turns that bring the mean of the
right-hemisphere centres minus that of the left ones closest to +x; no shift is made (connectivity_76's
turned centres lie about 17 mm anterior and 12 mm inferior of the synthetic connectome's). Centres
farther from the sphere's origin than the brain shell less SKULL_MARGIN are moved onto that radius along
their ray from the origin (the sphere is no head: the frontal and occipital poles reach beyond it).

Sources: orientation radial, along the outward ray from the sphere's origin through the (placed) centre,
the axis of the pyramidal cells of a cortical column on the crown of a gyrus; a positive region signal
(depolarisation) gives a positive potential on the scalp above it. A centre within 1 mm of the origin
has no ray and points up (+z). The run store does not mark subcortical regions: every region is a
cortical dipole by this rule, so deep regions contribute only through their distance (weakly). Moment:
DIPOLE_PER_MV nAm per mV of the region signal, the same for every region (region size is not modelled:
a scale convention, not a measured constant; relative band power, spectral peaks and correlations do not
depend on it, power does as its square). EEG in µV, average referenced."""

from functools import lru_cache
from pathlib import Path

import numpy as np

from .signals import ELECTRODES_1020

DIPOLE_PER_MV = 100.0  # nAm of dipole moment per mV of region signal
SHELLS = ((0.90, 0.33), (0.92, 1.0), (0.97, 0.004), (1.0, 0.33))  # MNE's default (relative radius, S/m)
SKULL_MARGIN = 5.0  # mm: sources stay this far inside the brain shell (MNE's customary mindist)
MONTAGE = "standard_1020"
UNITS = "uV"  # of the EEG: microvolts (ASCII, as MNE's get_data(units="uV") and the observation store)


def _mne():
    import mne  # about a second to import: only when a summary has an EEG

    return mne


def _info():
    """An MNE Info of the ELECTRODES_1020 channels at their standard_1020 positions (head frame)."""
    mne = _mne()
    info = mne.create_info(list(ELECTRODES_1020), 1000.0, "eeg", verbose=False)
    info.set_montage(mne.channels.make_standard_montage(MONTAGE), verbose=False)
    return info


@lru_cache(maxsize=1)
def _mri_head():
    """The fsaverage MRI -> head transform (4x4, m) shipped with MNE."""
    mne = _mne()
    path = Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-trans.fif"
    return mne.transforms.invert_transform(mne.read_trans(path, verbose=False))["trans"]


@lru_cache(maxsize=4)
def head_model(shells=SHELLS):
    """(info, sphere): the sphere model fitted to the electrodes (head frame, m) with the given shells
    ((radius relative to the scalp's, conductivity S/m), inside out), and the electrodes moved onto its
    scalp along their rays from its origin."""
    info = _info()
    radii, sigmas = zip(*shells)
    sphere = _mne().make_sphere_model("auto", "auto", info, radii, sigmas, verbose=False)
    origin, scalp = sphere["r0"], sphere["layers"][-1]["rad"]
    for ch in info["chs"]:
        ray = ch["loc"][:3] - origin
        ch["loc"][:3] = origin + scalp * ray / np.linalg.norm(ray)
    return info, sphere


def describe():
    """The head model and source rules in words, with the fitted sphere's radius and origin (mm)."""
    _, sphere = head_model()
    shells = ", ".join(f"{layer['rad'] * 1e3:.1f} mm {layer['sigma']:g} S/m" for layer in sphere["layers"])
    origin = " ".join(f"{v:.1f}" for v in sphere["r0"] * 1e3)
    return (
        f"MNE sphere model fitted to the {MONTAGE} electrodes: origin ({origin}) mm (head frame), shells "
        f"{shells}; one radial dipole per region at its centre (MNI-like frame, fsaverage head<->MRI "
        f"transform), {DIPOLE_PER_MV:g} nAm per mV of region signal; average reference"
    )


def electrode_names():
    """The 19 electrode names, in the order of the forward solution's rows."""
    return list(ELECTRODES_1020)


def frame_turn(centres, hemisphere):
    """The rotation (3, 3) about z by quarter turns that brings the mean of the right-hemisphere centres
    minus that of the left ones (hemisphere: "left" | "right" | "" per centre) closest to +x; the identity
    without centres of both hemispheres."""
    right = np.array([h == "right" for h in hemisphere])
    left = np.array([h == "left" for h in hemisphere])
    if not (right.any() and left.any()):
        return np.eye(3)
    d = centres[right].mean(axis=0) - centres[left].mean(axis=0)
    turns = [
        np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) for c, s in ((1, 0), (0, 1), (-1, 0), (0, -1))
    ]
    return max(turns, key=lambda r: (r @ d)[0])


def place(centres, hemisphere):
    """(positions (n, 3) m in the head frame, moved (n,) bool): the dipoles of region centres (n, 3) mm, by
    the module's frame rule; moved: pulled in onto the brain shell less SKULL_MARGIN."""
    _, sphere = head_model()
    mni = centres @ frame_turn(centres, hemisphere).T * 1e-3
    transform = _mri_head()
    head = mni @ transform[:3, :3].T + transform[:3, 3]
    origin = sphere["r0"]
    limit = sphere["layers"][0]["rad"] - SKULL_MARGIN * 1e-3
    offset = head - origin
    distance = np.linalg.norm(offset, axis=1)
    moved = distance > limit
    offset[moved] *= (limit / distance[moved])[:, None]
    return origin + offset, moved


def electrodes_in_frame(centres, hemisphere):
    """The electrode positions (19, 3) mm in the frame of the region centres (the inverse of `place`'s map,
    without the pull onto the shell)."""
    info, _ = head_model()
    head = np.array([ch["loc"][:3] for ch in info["chs"]])
    transform = _mri_head()
    mni = (head - transform[:3, 3]) @ np.linalg.inv(transform[:3, :3]).T
    return mni * 1e3 @ frame_turn(centres, hemisphere)


def orientations(positions):
    """Unit radial orientations (n, 3) of dipoles at positions (n, 3) m: outward from the sphere's origin;
    +z within 1 mm of it."""
    _, sphere = head_model()
    offset = positions - sphere["r0"]
    distance = np.linalg.norm(offset, axis=1, keepdims=True)
    return np.where(distance > 1e-3, offset / np.maximum(distance, 1e-12), np.array([0.0, 0.0, 1.0]))


def gain(positions, normals, shells=SHELLS):
    """(19, n) V/(A m): MNE's sphere-model potentials at the electrodes (referenced to infinity) of unit
    dipoles at positions (n, 3) m (head frame, inside the innermost shell) with orientations normals
    (n, 3); cached per (positions, normals, shells)."""
    key = (tuple(map(tuple, np.round(positions, 9))), tuple(map(tuple, np.round(normals, 9))), shells)
    return _gain(*key)


@lru_cache(maxsize=16)
def _gain(positions, normals, shells):
    mne = _mne()
    info, sphere = head_model(shells)
    rr, nn = np.array(positions, dtype=float), np.array(normals, dtype=float)
    src = mne.setup_volume_source_space(pos={"rr": rr, "nn": nn}, verbose=False)
    fwd = mne.make_forward_solution(info, None, src, sphere, meg=False, eeg=True, mindist=0.0, verbose=False)
    free = fwd["sol"]["data"].reshape(len(info["ch_names"]), len(rr), 3)  # x, y, z moment per source
    out = np.einsum("ens,ns->en", free, nn)
    out.setflags(write=False)
    return out


def lead_field(centres, hemisphere):
    """(19, n) µV per mV: the average-referenced EEG of each region's signal, its dipole placed and
    oriented by the module's rules with DIPOLE_PER_MV nAm per mV, so eeg = L @ signal."""
    positions, _ = place(centres, hemisphere)
    field = gain(positions, orientations(positions)) * DIPOLE_PER_MV * 1e-9 * 1e6
    return field - field.mean(axis=0, keepdims=True)
