"""CMA-ES (Hansen's covariance matrix adaptation evolution strategy, the `cmaes` package) as a fit's search:
each generation of `members` candidates is one batch of member runs, ranked by their misfit (eki.misfit:
the mean squared residual in noise units, as the ensemble Kalman inversion's).

It works in the parameters' unconstrained space u (parameters.Parameter.to_u) and starts from the prior:
the search distribution's mean and per-parameter spread are those of u over a large prior sample. The
search is a pure function of the fit's seed and the misfits it is told, so a resumed fit replays the
generations already evaluated and continues exactly as the uninterrupted fit would.

CMA-ES gives a point estimate, not a posterior: the fit reports the best member evaluated, and as its
spread that of the last generation (draws of the last search distribution, N(m, sigma^2 C)) in u about
it, mapped back to the parameters' units — how far the search had narrowed, not a calibrated
uncertainty.
"""

import numpy as np

from brainsim.errors import BrainsimError

from . import eki

PRIOR_SAMPLE = 4000  # prior draws that set the starting distribution
FAILED = 1e300  # the misfit CMA-ES is told for a member whose run blew up (ranked last)


class Search:
    """The generations of a CMA-ES search over the parameters (parameters.Parameter, in order), `members`
    candidates per generation, from the fit's seed."""

    def __init__(self, parameters, members, seed):
        try:
            from cmaes import CMA
        except ImportError:
            raise BrainsimError(
                "fit: method kind cmaes needs the cmaes package (pip install 'brainsim[twin]')"
            ) from None
        self.parameters = parameters
        rng = np.random.default_rng([seed, 0])
        u = np.stack([p.to_u(p.sample(rng, PRIOR_SAMPLE)) for p in parameters], axis=1)
        spread = u.std(axis=0)
        self.optimizer = CMA(
            mean=u.mean(axis=0),
            sigma=1.0,
            cov=np.diag(spread**2),
            population_size=members,
            seed=int(np.random.SeedSequence([seed, 3]).generate_state(1)[0] % 2**31),
        )
        self.members = members
        self.told = 0  # generations told their misfits
        self.asked = None  # the generation asked and not yet told (u), or None

    def generation(self, theta, g, observed, noise):
        """The parameters (members, parameters) of the next generation, after telling the search the
        generations evaluated (theta, g: lists per generation, as the fit holds them) that it has not been
        told yet: replayed from the seed, they must be the generations given."""
        for k in range(self.told, len(g)):
            u = self._ask()
            self.asked = None
            if not np.allclose(self._theta(u), theta[k], rtol=1e-9, atol=1e-12):
                raise BrainsimError(
                    f"fit: generation {k} of the CMA-ES search is not the one this seed gives (another "
                    "cmaes version?): start the fit again with --overwrite"
                )
            misfit = eki.misfit(np.asarray(g[k], dtype=float), observed, noise)
            self.optimizer.tell([(x, float(m) if np.isfinite(m) else FAILED) for x, m in zip(u, misfit)])
            self.told += 1
        return self._theta(self._ask())

    def _ask(self):
        """The generation after those told, in u (members, parameters)."""
        if self.asked is None:
            self.asked = np.stack([self.optimizer.ask() for _ in range(self.members)])
        return self.asked

    def _theta(self, u):
        return np.stack([p.to_theta(u[:, i]) for i, p in enumerate(self.parameters)], axis=1)


def estimate(parameters, theta, g, observed, noise):
    """The point estimate of a CMA-ES fit (theta, g: every generation evaluated, as lists) and its stated
    spread: {name: mean, sd, q2.5, q97.5} with mean the best member evaluated (least misfit over every
    generation), q2.5 and q97.5 those of a normal in u about it with the last generation's standard
    deviation in u, mapped to the parameters' units, and sd their distance over 3.92. Returns (that
    record, the best member's theta)."""
    last = np.stack([p.to_u(theta[-1][:, i]) for i, p in enumerate(parameters)], axis=1)
    spread_u = last.std(axis=0, ddof=1)
    every = np.concatenate([np.asarray(t, dtype=float) for t in theta])
    misfit = np.concatenate([eki.misfit(np.asarray(x, dtype=float), observed, noise) for x in g])
    best = int(np.argmin(misfit))
    record = {}
    for i, p in enumerate(parameters):
        u = p.to_u(every[best, i])
        low, high = float(p.to_theta(u - 1.96 * spread_u[i])), float(p.to_theta(u + 1.96 * spread_u[i]))
        record[p.name] = {
            "mean": float(every[best, i]),
            "sd": (high - low) / 3.92,
            "q2.5": low,
            "q97.5": high,
        }
    return record, every[best]
