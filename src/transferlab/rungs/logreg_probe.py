"""A lean L2-regularised logistic regression for scoring Cs: scikit-learn's lbfgs objective,
without the cost of a ``LogisticRegression.fit`` call around it.

Choosing C fits several models that are only scored on held-out rows and thrown away. Each
``LogisticRegression.fit`` spends a few milliseconds validating and copying its input before
its solver starts, which on a few hundred examples was most of a fit (a 16-iteration fit on
266 MiniLM features: 7.8 ms in ``fit``, 2.3 ms here), and scipy's L-BFGS-B, which it calls,
spent about 0.8 ms of bookkeeping per call on 20,000 weights (HOG features, 10 classes), as
long as the objective itself on 400 examples. ``Probe`` minimises the same objective (mean log
loss + ||W||^2 / (2 C n), intercept unpenalised; one row of weights for two classes, one per
class above; the same weights as scikit-learn's, tests/unit/test_logreg_choice.py) with a small
L-BFGS of its own (``lbfgs``), in the features' own dtype (float32 stays float32, as
scikit-learn does), keeps its weights between fits (a warm start is just the next ``fit``), and
scores held-out rows without building a fitted estimator.
"""

from __future__ import annotations

import numpy as np


class Probe:
    """Logistic regression on fixed training rows ``(X, y)`` over ``classes`` (all present in y)."""

    def __init__(self, X, y, classes: np.ndarray):
        self.X, self.classes = X, np.asarray(classes)
        self.XT = X.T  # once: a sparse matrix builds a new transposed object at every .T (18% of a TF-IDF fit)
        self.n, self.d = X.shape
        self.dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        index = np.searchsorted(self.classes, y)
        self.rows = 1 if len(self.classes) == 2 else len(self.classes)
        self.target = np.zeros((self.n, self.rows), dtype=self.dtype)  # one-hot (or class 1's indicator)
        if self.rows == 1:
            self.target[:, 0] = index == 1
        else:
            self.target[np.arange(self.n), index] = 1
        self.w = np.zeros(self.rows * (self.d + 1))  # (rows, d + 1) flattened: weights then intercept
        self.iterations, self.gtol = 0, 0.0
        self.reached = np.inf  # the largest gradient entry where the last fit stopped

    def fit(self, c: float, tol: float, shrink: float, max_iter: int = 1000) -> Probe:
        """Minimise the objective at C=c from the current weights until no gradient entry exceeds
        ``tol`` nor ``shrink`` times the largest at the start (a fixed tolerance alone stalls a warm
        start whose gradient already starts below it)."""
        l2 = 1.0 / (c * self.n)
        first = self.objective(self.w, l2)
        self.gtol = gtol = max(min(tol, shrink * float(np.abs(first[1]).max())), 1e-12)
        self.w, steps, self.reached = lbfgs(self.objective, self.w, (l2,), gtol, max_iter, first)
        self.iterations += steps
        return self

    def objective(self, w: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        """The objective and its gradient at weights ``w``."""
        W = w.reshape(self.rows, self.d + 1)
        residual, loss = self._residual(self._logits(W, self.X))
        grad = np.empty(W.shape)
        grad[:, :-1] = np.asarray(self.XT @ residual).T + l2 * W[:, :-1]
        grad[:, -1] = residual.sum(0, dtype=np.float64)
        penalty = 0.5 * l2 * float(np.dot(W[:, :-1].ravel(), W[:, :-1].ravel()))
        return loss + penalty, grad.ravel()

    def _logits(self, W: np.ndarray, X) -> np.ndarray:
        Z = np.asarray(X @ W[:, :-1].T.astype(self.dtype))
        Z += W[:, -1].astype(self.dtype)
        return Z

    def _residual(self, Z: np.ndarray) -> tuple[np.ndarray, float]:
        """(probabilities - target) / n and the mean log loss, from the logits Z (overwritten)."""
        if self.rows == 1:
            z, t = Z[:, 0], self.target[:, 0]
            loss = float(np.mean(np.logaddexp(0, z) - t * z, dtype=np.float64))
            return ((0.5 * (1 + np.tanh(0.5 * z)) - t) / self.n)[:, None], loss
        Z -= Z.max(1, keepdims=True)
        E = np.exp(Z)
        total = E.sum(1, keepdims=True)
        loss = float(
            np.mean(np.log(total[:, 0]), dtype=np.float64) - np.sum(Z * self.target, dtype=np.float64) / self.n
        )
        E /= total
        E -= self.target
        E *= 1.0 / self.n
        return E, loss

    def predict_proba(self, X) -> np.ndarray:
        """(N, classes) probabilities at the current weights."""
        Z = self._logits(self.w.reshape(self.rows, self.d + 1), X).astype(np.float64)
        if self.rows == 1:
            p = 0.5 * (1 + np.tanh(0.5 * Z[:, 0]))
            return np.column_stack([1 - p, p])
        Z -= Z.max(1, keepdims=True)
        P = np.exp(Z)
        return P / P.sum(1, keepdims=True)

    def log_loss(self, X, y) -> float:
        """Mean log loss on (X, y), clipped as scikit-learn's ``log_loss`` clips."""
        proba = self.predict_proba(X)
        p = proba[np.arange(len(y)), np.searchsorted(self.classes, y)]
        return float(-np.mean(np.log(np.clip(p, np.finfo(proba.dtype).eps, 1))))

    def coef(self) -> tuple[np.ndarray, np.ndarray]:
        """The weights in scikit-learn's layout: coef (rows, d) and intercept (rows,)."""
        W = self.w.reshape(self.rows, self.d + 1)
        return W[:, :-1].copy(), W[:, -1].copy()


def lbfgs(fun, x: np.ndarray, args: tuple, gtol: float, max_iter: int, first=None, memory: int = 10):
    """Minimise a smooth convex ``fun(x, *args) -> (value, gradient)`` from ``x`` by limited-memory
    BFGS with a backtracking (Armijo) line search, until no gradient entry exceeds ``gtol``, the
    value stops falling or ``max_iter`` steps: the point, the number of steps and the largest
    gradient entry there. A step costs
    the objective and a few vector operations (scipy's L-BFGS-B adds bookkeeping for bounds this
    problem does not have)."""
    value, grad = fun(x, *args) if first is None else first
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (step, change of gradient, 1 / their product)
    steps = 0
    while steps < max_iter and np.abs(grad).max() > gtol:
        direction = -_two_loop(grad, pairs)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: forget the curvature pairs
            pairs, direction = [], -grad / max(np.linalg.norm(grad), 1e-300)
            slope = float(grad @ direction)
        t = 1.0
        while True:
            new_x = x + t * direction
            new_value, new_grad = fun(new_x, *args)
            if new_value <= value + 1e-4 * t * slope or t < 1e-12:
                break
            t *= 0.5
        if new_value > value:  # no step lowers the value: as low as this precision goes
            break
        s, y = new_x - x, new_grad - grad
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y):
            pairs = [*pairs[-(memory - 1) :], (s, y, 1.0 / sy)]
        stalled = value - new_value <= 64 * np.finfo(float).eps * max(abs(value), abs(new_value), 1.0)
        x, value, grad, steps = new_x, new_value, new_grad, steps + 1
        if stalled:
            break
    return x, steps, float(np.abs(grad).max())


def _two_loop(grad: np.ndarray, pairs: list) -> np.ndarray:
    """The inverse-Hessian estimate from the curvature pairs times ``grad`` (the first step: the
    gradient scaled to unit length). numpy's own vector operations: scipy's BLAS calls (dot, axpy
    in place) were faster alone on one thread, but in a run they start that library's threads,
    which the run's one-thread limit for the text fit does not reach, and the classical text rung
    took twice as long (30.5-34.5 s against 15.8)."""
    if not pairs:
        return grad / max(np.linalg.norm(grad), 1e-300)
    q, alphas = grad.copy(), []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        q -= a * y
        alphas.append(a)
    s, y, _ = pairs[-1]
    q *= float(s @ y) / float(y @ y)
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        q += (a - rho * float(y @ q)) * s
    return q
