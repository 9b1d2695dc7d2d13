"""The loss protocol: every built-in loss's derivatives agree with finite differences of the one below."""

import numpy as np
import pytest

from memcorr import losses


def numeric_dgrad(loss, x, vs, eps=1e-5):
    """∇^{k+1}L[v_1..v_k] by a central difference of the k-th one along v_k."""
    *rest, last = vs
    return (loss.dgrad(x + eps * last, *rest) - loss.dgrad(x - eps * last, *rest)) / (2 * eps)


def cases():
    yield "nonconvex", losses.nonconvex(), np.array([0.3, -0.2, 0.5])
    yield "quadratic", losses.quadratic(), np.array([0.3, -0.2, 0.5])
    yield "rosenbrock", losses.rosenbrock(), np.array([0.3, -0.2, 0.5])
    yield "logistic", losses.logistic(), np.array([0.3, -0.2, 0.5])
    torch = pytest.importorskip("torch")
    loss, x0 = losses.mlp()
    yield "mlp", loss, x0
    yield "from_torch", losses.from_torch(lambda x: (x**4).sum() + torch.sin(x).prod()), np.array([0.3, -0.2, 0.5])


@pytest.mark.parametrize("name, loss, x", list(cases()), ids=lambda c: c if isinstance(c, str) else "")
def test_derivatives_are_consistent(name, loss, x):
    rng = np.random.default_rng(0)
    v1, v2, v3 = (rng.normal(size=x.size) for _ in range(3))
    eps = 1e-6
    numeric_grad = np.array([(loss.value(x + eps * e) - loss.value(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])
    assert np.allclose(loss.grad(x), numeric_grad, rtol=1e-5, atol=1e-7)
    assert np.allclose(loss.dgrad(x), loss.grad(x))
    assert np.allclose(loss.hvp(x, v1), loss.dgrad(x, v1))
    for vs in ([v1], [v1, v2], [v1, v2, v3]):
        assert np.allclose(loss.dgrad(x, *vs), numeric_dgrad(loss, x, vs), rtol=1e-4, atol=1e-6)
    assert np.allclose(loss.dgrad(x, v1, v2), loss.dgrad(x, v2, v1))  # symmetric


def test_numpy_adapter_by_central_differences():
    f = losses.from_numpy(lambda x: float(np.sum(np.cosh(x))), lambda x: np.sinh(x))
    x, v = np.array([0.1, 0.4]), np.array([1.0, -2.0])
    assert np.allclose(f.hvp(x, v), np.cosh(x) * v, rtol=1e-6)
    assert np.allclose(f.dgrad(x, v, v), np.sinh(x) * v * v, rtol=1e-5)


def test_unknown_builtin_loss():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.builtin("nope")


def test_verify_on_the_torch_mlp(run_cli):
    pytest.importorskip("torch")
    status, out, _ = run_cli("verify", "heavy_ball", "--loss", "mlp", "--param", "beta=0.5")
    assert status == 0 and "PASS" in out
