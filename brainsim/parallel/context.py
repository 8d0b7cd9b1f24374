"""The execution context: the communicator, passed explicitly (no hidden global), and PETSc start-up."""

from dataclasses import dataclass

from ..errors import BrainsimError

_petsc_ready = False


def init_petsc(args=(), comm=None):
    """Initialise petsc4py once per process with PETSc options from the command line (e.g. -ts_type cn).

    Must run before `from petsc4py import PETSc` anywhere else; later calls are no-ops.
    """
    global _petsc_ready
    if not _petsc_ready:
        import petsc4py

        petsc4py.init(["brainsim", *args], comm=comm)  # a fixed program name: argv[0] may be "-c"
        _petsc_ready = True
    from petsc4py import PETSc

    return PETSc


@dataclass(frozen=True)
class Context:
    """Which ranks take part in a run. Every component that communicates is handed this object."""

    comm: object  # an mpi4py communicator

    @classmethod
    def world(cls):
        from mpi4py import MPI

        return cls(MPI.COMM_WORLD)

    @property
    def rank(self):
        return self.comm.Get_rank()

    @property
    def size(self):
        return self.comm.Get_size()

    @property
    def is_root(self):
        return self.rank == 0


def agree(context, error=None):
    """Collective failure check: every rank passes its exception (or None). If any rank failed, every rank
    raises: its own exception where it failed, RankFailure naming the first failed rank elsewhere."""
    if context.size == 1:
        if error is not None:
            raise error
        return
    messages = context.comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
    failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
    if not failed:
        return
    if error is not None:
        raise error
    raise RankFailure(*failed[0])


class RankFailure(BrainsimError):
    """Another rank failed; this rank stops with it."""

    def __init__(self, rank, message):
        self.rank = rank
        super().__init__(f"rank {rank} failed: {message}")
