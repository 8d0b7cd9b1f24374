"""Time stepping with PETSc TS: one TS on COMM_SELF over one Vec holding every local cell.

Two ways to fill it:
* `Implicit` — any PETSc method chosen at run time (-ts_type beuler|cn|theta|bdf|arkimex|rosw ...,
  adaptive stepping allowed) on the implicit form F(t, u, u') = 0; by default the implicit midpoint rule
  with one Newton step per time step (IMPLICIT_DEFAULTS). Newton's linear systems are solved exactly in
  O(n): the states are eliminated onto the tree of voltages and that tree is solved by Hines elimination
  (a PCSHELL; -ksp_type preonly).
* `Staggered` — the fixed-step scheme of NEURON and Arbor, as a Python TS type: currents linearised
  at the present V, backward Euler for V on the tree, then exponential Euler for every state with the
  new V. Reproduces the peers' results at the same dt.

Events (synaptic inputs) are delivered at the start of the step that contains their time (Arbor's
convention) by fixed-step methods (the implicit ones add them in the TS's prestep, without stopping the
solve), and exactly at their time by adaptive ones.
"""

import ctypes
import re

import numpy as np

from ..errors import BrainsimError, ConfigError, NumericalError
from .jacobian import Jacobian
from .stepper import StaggeredSteps

SEGMENT_WORK = 2**20
"""Node-steps of the staggered scheme per compiled call at most (a few ms of wall time), so that a stop
asked for between steps (engine.run's grace) is honoured within that."""
EVENT_TOL = 1e-6
"""Event times within this fraction of a step of a step boundary count as on it."""

IMPLICIT_DEFAULTS = {
    "ts_type": "theta",  # PETSc's theta 0.5 without the endpoint variant: the implicit midpoint rule (one
    # step, second order, A-stable: events need no restart of a multistep history)
    "ts_adapt_type": "none",
    "snes_type": "ksponly",  # linearly implicit: one Newton step per time step, with the exact Jacobian
    "snes_linesearch_type": "basic",  # below: Newton to convergence where -snes_type newtonls is asked for
    "snes_rtol": "1e-8",
    "snes_atol": "1e-9",
    "snes_stol": "1e-12",
    "snes_max_it": "20",
    "ksp_type": "preonly",
    "ts_max_snes_failures": "-1",  # a step whose Newton solve fails is retried with half the step
}
"""Defaults of the PETSc method; the config's simulation.petsc and the command line override them. Chosen
by measurement (README "Time stepping"): on the L5PC's Step1 train 14x more accurate than BDF2 with Newton
at dt 0.025 ms and 1.6x faster; on the demo network 7.5x faster than BDF2, whose history every synaptic
event restarted."""


def step_index(times, dt):
    """Index of the step [k·dt, (k+1)·dt) that contains each event time."""
    return np.floor(np.asarray(times) / dt + EVENT_TOL).astype(np.int64)


class _Base:
    """What both integrators share: the TS, the solution Vec, the epoch-advance contract."""

    def __init__(self, PETSc, group, observer, dt):
        self.PETSc, self.group, self.observer, self.dt = PETSc, group, observer, dt
        self.limit = observer.limit
        self.u = PETSc.Vec().createSeq(group.size, comm=PETSc.COMM_SELF)
        self.ts = PETSc.TS().create(comm=PETSc.COMM_SELF)
        self.failure = None  # an exception raised inside a PETSc callback, re-raised after the solve

    @property
    def time(self):
        return self.ts.getTime()

    @property
    def steps(self):
        """Steps taken so far (adaptive methods take as many as their error control needs)."""
        return self.ts.getStepNumber()

    def set_state(self, u, t):
        """Start from state u at time t (also used by restarts)."""
        self.u.getArray()[:] = u
        self.ts.setTime(t)
        self.ts.setStepNumber(int(round(t / self.dt)))
        self.observer.start(self.u.getArray(), t)

    def close(self):
        self.ts.destroy()
        self.u.destroy()

    def restart(self):
        """Forget the multistep history (at checkpoints, so that a resumed run continues the same way)."""
        self.ts.restartStep()

    def _guard(self, fn, *args):
        """Run a callback; keep the first exception to re-raise after ts.solve (PETSc would hide its type)."""
        try:
            return fn(*args)
        except BaseException as e:  # re-raised unchanged after the solve (Ctrl-C included)
            if self.failure is None:
                self.failure = e
            raise

    def _solve_to(self, t_end):
        """ts.solve up to t_end; on failure raise the callback's exception or a NumericalError."""
        self.ts.setMaxTime(t_end)
        try:
            self.ts.solve(self.u)
        except self.PETSc.Error:
            if self.failure is not None:
                raise self.failure from None
            self._raise_divergence()
        if self.failure is not None:
            raise self.failure
        if self.ts.getConvergedReason() < 0:
            self._raise_divergence()

    def _raise_divergence(self):
        """The TS stopped without reaching the time asked for: name where V is largest when V is sane."""
        u, t = self.u.getArray(readonly=True), self.ts.getTime()
        self.observer.check(u, t)  # a bad V is a blow-up, named as such
        v = u[: self.group.n_nodes]
        node = int(np.argmax(np.abs(v)))
        gid, comp = self.group.locate_node(node)
        reason = self.ts.getConvergedReason()
        raise NumericalError(
            gid,
            comp,
            t,
            float(v[node]),
            f" (the largest |V|; TS converged reason {reason}: try a smaller dt, -ts_adapt_type basic or "
            "another -ts_type)",
            what="PETSc's time stepper failed to converge",
        )


class Staggered(_Base):
    """NEURON/Arbor fixed-step scheme as a Python-implemented PETSc TS type. One TS step is a segment of
    fixed steps run by one compiled call (engine.stepper), up to the epoch's end or the first region-bin
    boundary; each fixed step: events due, currents, V, states, spike detection, the probes' samples."""

    def __init__(self, PETSc, group, observer, dt):
        super().__init__(PETSc, group, observer, dt)
        self.u_array = self.u.getArray()  # a view of the Vec's memory, valid for the Vec's lifetime
        self.kernel = StaggeredSteps(group, self.u_array, dt, self.limit)
        self.events = self.kernel.chunk_events(*_no_events())
        self.k = 0  # the next step: [k·dt, (k+1)·dt)
        self.k_end = 0  # the step the present epoch ends at
        self.segment = max(1, SEGMENT_WORK // max(1, group.n_nodes))  # steps per compiled call at most
        observer.make_room(self.segment // 2 + 1)  # a detector crosses at most every other step
        ts = self.ts
        ts.setType(PETSc.TS.Type.PYTHON)
        ts.setPythonContext(_StepContext(self))
        ts.setTimeStep(dt)
        ts.setMaxSteps(2**31 - 1)
        ts.setExactFinalTime(PETSc.TS.ExactFinalTime.STEPOVER)
        ts.setSolution(self.u)
        ts.setFromOptions()
        if ts.getType() != PETSc.TS.Type.PYTHON:
            raise BrainsimError(
                f"-ts_type {ts.getType()} was given but simulation.method is 'staggered'; "
                "use simulation.method: petsc to choose a PETSc method"
            )
        ts.setUp()

    @property
    def steps(self):
        return self.k

    def set_state(self, u, t):
        super().set_state(u, t)
        self.k = int(round(t / self.dt))

    def _step(self, ts):
        obs, k0 = self.observer, self.k
        v_sum, span = obs.region_rows(k0)
        k1 = obs.segment_end(k0, min(self.k_end, k0 + self.segment))
        samples = obs.sample_buffers(k1 - k0)
        k, bad, n = self.kernel.run(
            k0, k1, self.events, obs.v_prev, obs.spike_index, obs.spike_time, v_sum, span, samples
        )
        self.k = k
        ts.setTime(k * self.dt)
        if bad >= 0:  # what the steps before the bad one gave is kept (chunks before its ran on)
            n = int(np.searchsorted(obs.spike_time[:n], k * self.dt, side="right"))
            if samples is not None:
                _, every, _, count = samples
                np.minimum(count, k // every - k0 // every, out=count)
            obs.keep(self.u_array, k * self.dt, n, samples)
            obs.blow_up(bad, self.u_array, (k + 1) * self.dt)
        obs.after_steps(self.u_array, k * self.dt, n, samples)

    def advance(self, t_end, ev_time, ev_index, ev_weight):
        """Advance to t_end (a whole number of steps), delivering events sorted by time."""
        self.events = self.kernel.chunk_events(
            step_index(ev_time, self.dt), np.asarray(ev_index, np.int64), np.asarray(ev_weight, float)
        )
        self.k_end = int(np.ceil(t_end / self.dt - EVENT_TOL))
        self._solve_to(t_end - EVENT_TOL * self.dt)
        self.ts.setTime(t_end)

    def warm_up(self):
        """Compile (or load from cache) the step kernel on a copy of the state, outside the timed run."""
        g, obs = self.group, self.observer
        saved, ion = self.u_array.copy(), g.ion.copy()
        try:
            self.kernel.run(
                self.k, self.k + 1, self.kernel.chunk_events(*_no_events()), obs.v_prev.copy(),
                np.zeros_like(obs.spike_index), np.zeros_like(obs.spike_time), np.zeros(0), np.zeros(0),
            )  # fmt: skip
        finally:
            self.u_array[:] = saved
            g.ion[:] = ion


def _no_events():
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)


class Implicit(_Base):
    """A PETSc implicit (or IMEX, Rosenbrock, ...) method on F(t, u, u') = 0 with the exact tree solve."""

    def __init__(self, PETSc, group, observer, dt):
        super().__init__(PETSc, group, observer, dt)
        g = group
        self.jacobian = Jacobian(g)
        self.stim_time = 0.0  # where stimuli are evaluated: the middle of the stretch being solved
        self.evaluated = None  # (Vec, its state, stim_time) where the last residual left currents and rates
        self.events, self.next_event = _no_events(), 0  # an epoch's: (step index or time, index, weight)
        ts = self.ts
        ts.setProblemType(PETSc.TS.ProblemType.NONLINEAR)
        if g.is_junction.any():  # zero-area junction nodes are algebraic rows
            ts.setEquationType(PETSc.TS.EquationType.DAE_IMPLICIT_INDEX1)
        self.F = self.u.duplicate()
        ts.setIFunction(self.ifunction, self.F)
        self.J = PETSc.Mat().createPython([g.size, g.size], context=_JacobianMat(self), comm=PETSc.COMM_SELF)
        self.J.setUp()
        ts.setIJacobian(self.ijacobian, self.J, self.J)
        ts.setType(IMPLICIT_DEFAULTS["ts_type"])
        ts.setTimeStep(dt)
        ts.setMaxSteps(2**31 - 1)
        ts.setSolution(self.u)
        ts.setPostStep(self.poststep)
        ts.setPreStep(self.prestep)
        ksp = ts.getSNES().getKSP()
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(_TreePC(self))
        ts.setFromOptions()
        if ts.getSNES().getType() == PETSc.SNES.Type.KSPONLY:
            observer.advice = (
                "; the PETSc method takes one Newton step per time step (snes_type ksponly): try a smaller "
                "simulation.dt, or Newton to convergence (simulation.petsc.snes_type: newtonls)"
            )
        # petsc4py 3.18 has no TSAdapt binding: the adapt type in force is the one in the options database,
        # where make_integrator always puts one (IMPLICIT_DEFAULTS: none).
        self.adaptive = PETSc.Options().getString("ts_adapt_type", "none") != "none"
        ts.setExactFinalTime(
            PETSc.TS.ExactFinalTime.MATCHSTEP if self.adaptive else PETSc.TS.ExactFinalTime.STEPOVER
        )
        ts.setUp()

    # -- the problem: residual and Jacobian --------------------------------------------------

    def ifunction(self, ts, t, U, Udot, F):
        self._guard(self._ifunction, t, U, Udot, F)

    def _ifunction(self, t, U, Udot, F):
        # Read-only access to U leaves its state as it was, so that ijacobian can tell the same U.
        u, udot, f = U.getArray(readonly=True), Udot.getArray(readonly=True), F.getArray()
        self.jacobian.evaluate(u, self.stim_time, udot, f)
        self.evaluated = (U.handle, U.stateGet(), self.stim_time)

    def ijacobian(self, ts, t, U, Udot, shift, J, P):
        self._guard(self._ijacobian, t, U, shift)

    def _ijacobian(self, t, U, shift):
        # Newton's Jacobian is taken where the residual was just evaluated: its currents and rates are kept.
        same = self.evaluated == (U.handle, U.stateGet(), self.stim_time)
        self.jacobian.assemble(U.getArray(readonly=True), shift, self.stim_time, evaluated=same)

    def solve_jacobian(self, r, x):
        self.jacobian.solve(r, x)

    def mult_jacobian(self, x, y):
        self.jacobian.mult(x, y)

    def prestep(self, ts):
        self._guard(self._prestep, ts)

    def _prestep(self, ts):
        """Fixed steps: the events of the step about to be taken, added to the solution (PETSc restarts a
        multistep method when the solution changed here; one-step methods need nothing)."""
        step = self.events[0]
        if not self.adaptive and self.next_event < step.size:
            k = int(round(ts.getTime() / self.dt))
            self._deliver(int(np.searchsorted(step, k, side="right")))

    def _deliver(self, upto):
        """Add the events next_event .. upto − 1 to the solution."""
        if upto > self.next_event:
            _, index, weight = self.events
            np.add.at(self.u.getArray(), index[self.next_event : upto], weight[self.next_event : upto])
            self.next_event = upto

    def poststep(self, ts):
        self._guard(self._poststep, ts)

    def _poststep(self, ts):
        # Read-only access: a writable getArray bumps the Vec's state, and PETSc then takes the solution
        # as changed from outside and restarts multistep methods (BDF would fall to first order).
        u, t = self.u.getArray(readonly=True), ts.getTime()
        self.observer.check(u, t)
        self.observer.after_step(u, t)

    # -- epochs -----------------------------------------------------------------------------

    def advance(self, t_end, ev_time, ev_index, ev_weight):
        """Advance to t_end, stopping where a stimulus switches on or off, and, for adaptive methods, at
        event times (to add the events exactly there; fixed steps get theirs from prestep, at the start of
        the step that holds them). Within each stretch the stimuli are constant and are evaluated at its
        midpoint; multistep methods restart after each stop."""
        t, tol = self.ts.getTime(), EVENT_TOL * self.dt
        breaks = self.group.stimulus_breaks(t, t_end)
        if self.adaptive:
            stops, keys = np.union1d(ev_time, breaks), np.asarray(ev_time)
        else:
            stops, keys = np.unique(np.round(breaks / self.dt) * self.dt), step_index(ev_time, self.dt)
        self.events, self.next_event = (keys, np.asarray(ev_index, np.int64), np.asarray(ev_weight)), 0
        for stop in [*stops[stops < t_end - tol], t_end]:
            if stop > t + tol:
                self.stim_time = 0.5 * (t + stop)
                self._solve_to_time(stop)
                t = stop
            if self.adaptive:
                self._deliver(int(np.searchsorted(keys, stop + tol, side="right")))
            if stop < t_end - tol:  # the right-hand side changes here: multistep history is invalid
                self.ts.restartStep()
        self._deliver(keys.size)  # fixed steps: those at t_end, the next step's
        self.events, self.next_event = _no_events(), 0

    def _solve_to_time(self, t):
        """Solve to exactly t: adaptive methods match it; fixed steps stop on it (t is on the grid). A fixed
        step halved after a failed Newton solve (dt/2^k still lands on the grid) is restored here."""
        if not self.adaptive:
            self.ts.setTimeStep(self.dt)
        self._solve_to(t if self.adaptive else t - EVENT_TOL * self.dt)
        self.ts.setTime(t)

    def warm_up(self):
        """Compile (or load from cache) every kernel by evaluating the problem once, outside the timed run."""
        x, y = self.u.duplicate(), self.u.duplicate()
        self.u.copy(x)
        self._ifunction(0.0, x, y, self.F)
        self._ijacobian(0.0, x, 40.0)
        self.solve_jacobian(self.F.getArray(), y.getArray())
        self.mult_jacobian(y.getArray(), self.F.getArray())
        x.destroy()
        y.destroy()

    def close(self):
        super().close()
        self.F.destroy()
        self.J.destroy()


class _StepContext:
    """Python context of the Python TS type: TSStep calls step(ts)."""

    def __init__(self, owner):
        self.owner = owner

    def step(self, ts):
        """One step [k·dt, (k+1)·dt)."""
        self.owner._guard(self.owner._step, ts)


class _JacobianMat:
    """Python context of the Jacobian MatShell: y = J·x from the stored entries."""

    def __init__(self, owner):
        self.owner = owner

    def mult(self, mat, x, y):
        self.owner._guard(self.owner.mult_jacobian, x.getArray(), y.getArray())


class _TreePC:
    """Python context of the PCSHELL: applies J⁻¹ exactly (Schur elimination + Hines)."""

    def __init__(self, owner):
        self.owner = owner

    def apply(self, pc, x, y):
        self.owner._guard(self.owner.solve_jacobian, x.getArray(), y.getArray())


def make_integrator(PETSc, method, group, observer, dt, petsc_options):
    """The integrator for simulation.method. PETSc options: the command line (already in the database)
    wins over the config's simulation.petsc, which wins over the defaults; options a previous run in
    this process put in the database are removed first. An option given (on the command line or in
    simulation.petsc) that PETSc refuses, or never reads while setting the method up, is a ConfigError
    naming it."""
    opts = PETSc.Options()
    for key in _set_by_us:
        opts.delValue(key)
    _set_by_us.clear()
    present = opts.getAll()  # read without marking anything as used (hasName would)
    given = {key: f"-{key}" for key in present}
    given.update({key: f"simulation.petsc.{key}" for key in petsc_options if key not in present})
    defaults = IMPLICIT_DEFAULTS if method == "petsc" else {}
    for key, value in {**defaults, **{k: _option_text(v) for k, v in petsc_options.items()}}.items():
        if key not in present:
            opts[key] = value
            _set_by_us.add(key)
    values = opts.getAll()
    _check_types(PETSc, values, given)
    cls = Implicit if method == "petsc" else Staggered
    try:
        integrator = cls(PETSc, group, observer, dt)
    except PETSc.Error as e:
        shown = {given[key]: values[key] for key in sorted(given)}
        raise ConfigError(
            "simulation.petsc" if all(path.startswith("simulation.") for path in shown) else "PETSc options",
            shown,
            "options PETSc accepts for this method (see PETSc's manual pages for TS, SNES and KSP)",
            detail=f"PETSc error {e.ierr}: {_error_text(PETSc, e.ierr)}",
        ) from None
    unused = [key for key in sorted(given) if not _used(PETSc, key) and not READ_LATER.search(key)]
    if unused:
        integrator.close()
        key = unused[0]
        raise ConfigError(
            given[key],
            values[key] or None,
            f"an option PETSc reads for simulation.method {method!r} (ts_type "
            f"{values.get('ts_type', 'python')}); PETSc never read this one: misspelt, or an option of "
            "another type or method",
            detail=None if len(unused) == 1 else f"never read: {', '.join(given[k] for k in unused)}",
        )
    return integrator


def check_petsc_options(recipe, settings=None):
    """What `brainsim validate`, `submit` and `sweep` check of simulation.petsc: the method set up, as a run
    would, on the recipe's first cell alone (settings: default the recipe config's); options refused or
    never read are a ConfigError, as in make_integrator."""
    from ..parallel.context import init_petsc
    from .group import CellGroup
    from .observe import StepObserver
    from .settings import SimulationSettings

    settings = SimulationSettings.from_config(recipe.config) if settings is None else settings
    PETSc = init_petsc()
    group = CellGroup(recipe, [0])
    observer = StepObserver(group, [], {}, settings.dt, settings.voltage_limit)
    make_integrator(PETSc, settings.method, group, observer, settings.dt, settings.petsc).close()


READ_LATER = re.compile(
    r"(^|_)(view|converged_reason|test)(_|$)|^(options|log|malloc|memory|objects)_|^checkstack$"
)
"""PETSc options read only while solving or at exit (viewers, reports, tests of Jacobians, leak and log
reports): not yet read when a run is set up, so never refused as unused."""

TYPE_OPTIONS = {"ts_type": "TS", "snes_type": "SNES", "ksp_type": "KSP", "pc_type": "PC"}
"""Options that choose a PETSc type, and the class whose registered types they take."""


def _check_types(PETSc, values, given):
    """A type option (-ts_type, ...) given must name one of PETSc's types of that class."""
    for key, cls in TYPE_OPTIONS.items():
        if key in given:
            types = sorted({v for k, v in vars(getattr(PETSc, cls).Type).items() if not k.startswith("_")})
            if values[key] not in types:
                raise ConfigError(given[key], values[key], f"a PETSc {cls} type: {types}")


def _petsc_library(PETSc):
    """The PETSc C library petsc4py runs on (reached through petsc4py's extension module)."""
    global _library
    if _library is None:
        _library = ctypes.CDLL(PETSc.__file__)
        _library.PetscOptionsUsed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        _library.PetscErrorMessage.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_char_p),
        ]
    return _library


_library = None


def _used(PETSc, key):
    """Whether PETSc has read option key (PETSc's own record, the one -options_left reports from)."""
    used = ctypes.c_int(0)
    if _petsc_library(PETSc).PetscOptionsUsed(None, key.encode(), ctypes.byref(used)):
        raise BrainsimError(f"PETSc could not say whether option -{key} was used")
    return bool(used.value)


def _error_text(PETSc, code):
    """PETSc's one-line description of an error code."""
    text = ctypes.c_char_p()
    if _petsc_library(PETSc).PetscErrorMessage(code, ctypes.byref(text), None) or not text.value:
        return "no description"
    return text.value.decode(errors="replace")


_set_by_us = set()
"""Option names this module put in PETSc's database (so that the next run can take them out)."""


def _option_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
