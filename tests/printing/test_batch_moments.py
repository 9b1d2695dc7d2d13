"""The batch moments of a nonlinear program under random batches (AdamW, RMSprop: docs/method.md §7),
estimated by the torch and JAX modules from the batch split into micro-batches (per-example losses
here): without bias against the moments of the data set taken from their definitions, the same in both
backends, and in the NumPy module's exact moments over the same split scaled as the estimator says."""

import functools

import numpy as np
import pytest

import memcorr

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(11)
N, DIM = 30, 3
X = RNG.normal(size=(N, DIM))
Y = RNG.choice([-1.0, 1.0], size=N)
A = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
CENTRES = RNG.normal(size=(N, DIM))
THETA = np.array([0.3, -0.7, 0.5])
FIELD = np.array([1.0, -0.5, 2.0])  # the E of cov_hess, batch_hess, xi_batch_hess


CURVATURES = RNG.uniform(0.5, 2.0, size=N)


def data(lib, array, rows):
    """``array[rows]`` in the backend's arrays (jax: ``rows`` may be traced)."""
    if isinstance(rows, list):
        rows = np.array(rows)
    return torch.tensor(array)[rows] if lib is torch else jnp.asarray(array)[rows]


def logistic(lib, theta, rows):
    """Per-example logistic losses: the examples' Hessians differ and go with their gradients."""
    margins = data(lib, Y, rows) * (data(lib, X, rows) @ theta)
    return torch.nn.functional.softplus(-margins) if lib is torch else jax.nn.softplus(-margins)


def quadratic(lib, theta, rows):
    """Per-example quadratics of one Hessian ``A`` about different centres: the noise without any Hessian's."""
    d = theta - data(lib, CENTRES, rows)
    return 0.5 * ((d @ data(lib, A, slice(None))) * d).sum(-1)


def curvatures(lib, theta, rows):
    """Per-example ``a_i/2 ‖θ − c_i‖²`` with ``c_i`` near 0: the curvature that varies is most of the noise,
    so the batch Hessians' moments are large against their spread."""
    d = theta - 0.1 * data(lib, CENTRES, rows)
    return 0.5 * data(lib, CURVATURES, rows) * (d * d).sum(-1)


def exact(loss):
    """The moments of a batch of one example drawn uniformly, from their definitions (moments.py), with
    each example's gradient and Hessian by torch."""
    theta = torch.tensor(THETA)

    def one(i):
        return lambda t: loss(torch, t, [i]).sum()

    grads = torch.stack([torch.func.grad(one(i))(theta) for i in range(N)]).numpy()
    hessians = torch.stack([torch.func.hessian(one(i))(theta) for i in range(N)]).numpy()
    xi, H = grads - grads.mean(0), hessians.mean(0)
    return {
        "variance": (xi**2).mean(0),
        "cov_hess": np.mean([x * (H @ (x * FIELD)) for x in xi], axis=0),
        "batch_hess": np.mean([Hi @ (x * FIELD) for Hi, x in zip(hessians, xi)], axis=0),
        "xi_batch_hess": np.mean([x * (Hi @ FIELD) for Hi, x in zip(hessians, xi)], axis=0),
    }


@pytest.fixture(scope="module")
def modules():
    d = memcorr.derive("adamw", batches="random")
    return {"torch": memcorr.load_module(d, backend="torch"), "jax": memcorr.load_module(d, backend="jax")}


MOMENTS = ("variance", "cov_hess", "batch_hess", "xi_batch_hess")


def estimates(module, backend, loss, rows):
    """The four estimates of the module's batch loss protocol, the batch being the examples ``rows``."""
    if backend == "jax":
        return {k: np.asarray(v) for k, v in jax_estimates(module, loss)(jnp.asarray(rows)).items()}
    theta, field = torch.tensor(THETA), torch.tensor(FIELD)
    _, _, L = module._at_batch(theta, lambda t: loss(torch, t, torch.tensor(rows)))
    return {k: v.detach().numpy() for k, v in zip(MOMENTS, moments_of(L, theta, field))}


def moments_of(L, theta, field):
    return [L.variance(theta), L.cov_hess(theta, field), L.batch_hess(theta, field), L.xi_batch_hess(theta, field)]


@functools.cache
def jax_estimates(module, loss):
    """``estimates`` for jax, compiled once (the protocol's functions trace under ``jax.jit``)."""

    def run(rows):
        theta, _, L = module._at_batch(jnp.asarray(THETA), lambda t: loss(jnp, t, rows))
        field = jnp.asarray(FIELD)
        return dict(zip(MOMENTS, moments_of(L, theta, field)))

    return jax.jit(run)


# cov_hess uses the batch's own Hessian for the data's: without bias only where every example has the same
CASES = [
    (curvatures, ("variance", "batch_hess", "xi_batch_hess")),
    (quadratic, ("variance", "cov_hess")),
]


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("loss, names", CASES, ids=["curvatures", "quadratic"])
def test_the_moment_estimates_are_unbiased(modules, backend, loss, names):
    # batches of B examples drawn with replacement have moments 1/B of one example's
    B, draws = 4, 500
    truth = {k: v / B for k, v in exact(loss).items()}
    samples = [estimates(modules[backend], backend, loss, RNG.integers(N, size=B)) for _ in range(draws)]
    for name in names:
        values = np.array([s[name] for s in samples])
        mean, se = values.mean(0), values.std(0) / np.sqrt(draws)
        assert np.all(np.abs(mean - truth[name]) < 4 * se), name
        # the test can fail: the split's plain mean (Σ_i/k², not Σ_i/(k(k − 1))) is off by (k − 1)/k = 3/4
        assert np.any(np.abs(mean * (B - 1) / B - truth[name]) > 4 * se), name


def test_the_backends_agree_and_scale_the_exact_moments_of_the_split(modules):
    # over one split into k micro-batches, the NumPy module's exact moments (each micro-batch a batch) are
    # the estimates times k − 1: the estimator's Σ_i/(k(k − 1)) against the exact mean Σ_i/k
    rows = [3, 17, 8, 25, 11]
    k = len(rows)
    numpy_module = memcorr.load_module(memcorr.derive("adamw", batches="random"), backend="numpy")
    moment = numpy_module._moment

    class Split:
        batches = k

        def __init__(self, row=None):
            self.rows = rows if row is None else [row]

        def batch(self, b):
            return Split(rows[b])

        def grad(self, theta):
            return torch.func.grad(lambda t: logistic(torch, t, self.rows).mean())(torch.tensor(theta)).numpy()

        def hvp(self, theta, v):
            f = torch.func.grad(lambda t: logistic(torch, t, self.rows).mean())
            return torch.func.jvp(f, (torch.tensor(theta),), (torch.tensor(v),))[1].numpy()

    torch_values = estimates(modules["torch"], "torch", logistic, rows)
    jax_values = estimates(modules["jax"], "jax", logistic, rows)
    for name in torch_values:
        args = () if name == "variance" else (FIELD,)
        want = moment(name, THETA, Split(), *args) / (k - 1)
        assert np.allclose(torch_values[name], want, rtol=1e-10, atol=1e-14), name
        assert np.allclose(jax_values[name], want, rtol=1e-10, atol=1e-14), name
    assert np.isclose(
        torch_values["variance"].sum(),
        modules["torch"]._at_batch(torch.tensor(THETA), lambda t: logistic(torch, t, rows))[2].noise(None).item(),
    )


@pytest.mark.parametrize("name, params", [("adamw", {}), ("rmsprop", {"weight_decay": "0", "momentum": "0"})])
def test_a_nonlinear_program_runs_on_micro_batches_in_both_backends(name, params):
    d = memcorr.derive(name, batches="random", params=params)
    t_module, j_module = memcorr.load_module(d, backend="torch"), memcorr.load_module(d, backend="jax")
    rows = [0, 4, 9, 13, 21, 28]
    for function, h in (("correction", ()), ("memoryless", (0.01,))):
        want = getattr(t_module, function)(torch.tensor(THETA), lambda t: logistic(torch, t, rows), *h)
        got = getattr(j_module, function)(jnp.asarray(THETA), lambda t: logistic(jnp, t, rows), *h)
        assert np.allclose(want.detach().numpy(), np.asarray(got), rtol=1e-9), function
    w = torch.nn.Parameter(torch.tensor(THETA))
    t_module.Memoryless([w], lr=0.01).step(lambda: logistic(torch, w, rows))
    assert torch.isfinite(w).all() and not torch.equal(w.detach(), torch.tensor(THETA))
