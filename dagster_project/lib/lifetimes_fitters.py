"""lifetimes' fitters as customer360 fits them (lib/clv.py). A module of its own, imported on the first fit:
lifetimes, autograd and scipy take about 1.5 s to import, which loading the code location need not pay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from autograd import value_and_grad
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError
from scipy.optimize import minimize

__all__ = ["FITTERS", "ConvergenceError"]


class _WithoutHessian:
    """lifetimes ends every BG/NBD, MBG/NBD and Gamma-Gamma fit with an autograd Hessian of the likelihood,
    kept only for standard errors (`summary`), which customer360 never reads; at a million customers it took
    as long as the optimisation. This is lifetimes' own optimisation (BaseFitter._fit: scipy's minimize on
    autograd's value and gradient, same start, tolerance and options) without that last step; the standard
    errors lifetimes would derive from it are left unset. Options such as BFGS's `hess_inv0` pass through
    lifetimes' `fit(**kwargs)` to scipy."""

    inverse_hessian_: np.ndarray | None = None

    _negative_log_likelihood: Callable[..., Any]  # the lifetimes fitter's own, which this class is mixed into

    def _fit(
        self, minimizing_function_args, initial_params, params_size, disp, tol=1e-7, bounds=None, **kwargs
    ):
        output = minimize(
            value_and_grad(self._negative_log_likelihood),
            jac=True,
            method=None,
            tol=tol,
            x0=0.1 * np.ones(params_size) if initial_params is None else initial_params,
            args=minimizing_function_args,
            options={"disp": disp, **kwargs},
            bounds=bounds,
        )
        if not output.success:
            raise ConvergenceError(f"The model did not converge: {output.message}")
        # BFGS's estimate of the inverse Hessian at the optimum, symmetrised: handed to a fit of the same model
        # on more customers as its hess_inv0 (lib/clv.py, _starting_point).
        estimate = getattr(output, "hess_inv", None)
        self.inverse_hessian_ = (estimate + estimate.T) / 2 if isinstance(estimate, np.ndarray) else None
        return output.x, output.fun, None

    def _compute_variance_matrix(self) -> None:
        return None

    def _compute_standard_errors(self) -> None:
        return None

    def _compute_confidence_intervals(self) -> None:
        return None


class _BetaGeoFitter(_WithoutHessian, BetaGeoFitter):
    pass


class _ModifiedBetaGeoFitter(_WithoutHessian, ModifiedBetaGeoFitter):
    pass


class _GammaGammaFitter(_WithoutHessian, GammaGammaFitter):
    pass


FITTERS = {
    "bgnbd": _BetaGeoFitter,
    "paretonbd": ParetoNBDFitter,  # its own Nelder-Mead fit, no Hessian
    "mbgnbd": _ModifiedBetaGeoFitter,
    "gammagamma": _GammaGammaFitter,
}
