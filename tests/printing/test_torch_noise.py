"""The PyTorch module with random batches: the gradient noise estimated from the batch split into
micro-batches (per-example losses here), without bias, with a variance that falls with the split, and
differentiable."""

import numpy as np
import pytest

import memcorr

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
X = torch.tensor(RNG.normal(size=(40, 3)))
Y = torch.tensor(RNG.normal(size=40))
THETA = torch.tensor([0.3, -0.7, 0.5], dtype=torch.float64)


def per_example(theta):
    return ((X @ theta - Y) ** 2) / 2


def noise_of_one_example(theta):
    """``V_1 = mean_i ‖∇ℓ_i − ∇L‖²`` over the whole data set, exactly."""
    grads = (X @ theta - Y)[:, None] * X
    return float(((grads - grads.mean(0)) ** 2).sum(1).mean())


@pytest.fixture(scope="module")
def module():
    return memcorr.load_module(memcorr.derive("heavy_ball", batches="random"), backend="torch")


def batch(indices):
    return lambda theta: per_example(theta)[indices]


def test_the_noise_estimate_is_unbiased(module):
    # batches of B examples drawn with replacement: V_B = V_1/B, E‖∇L_B‖² = ‖∇L‖² + V_B, so the mean of
    # h G over batches is h (c_1 (‖∇L‖² + V_B) + c_2 V_B), heavy ball's c_1 = β/(2(1−β)²), c_2 = β/(2(1−β)(1+β))
    B, draws, h, beta = 8, 3000, 0.1, 0.9
    values = [
        float(module.penalty(THETA, batch(torch.tensor(RNG.integers(40, size=B))), h).detach()) for _ in range(draws)
    ]
    g = (X @ THETA - Y) @ X / 40
    V_B = noise_of_one_example(THETA) / B
    c1, c2 = beta / (2 * (1 - beta) ** 2), beta / (2 * (1 - beta) * (1 + beta))
    expected = h * (c1 * (float(g @ g) + V_B) + c2 * V_B)
    assert abs(np.mean(values) - expected) < 4 * np.std(values) / np.sqrt(draws)


def test_the_variance_falls_with_the_split(module):
    # the relative spread of the estimate over draws, per-example splits of 4 and of 32
    def spread(B):
        noise = [
            float(module.penalty(THETA, batch(torch.tensor(RNG.integers(40, size=B))), 1.0).detach())
            for _ in range(400)
        ]
        return np.std(noise) / np.mean(noise)

    assert spread(32) < 0.6 * spread(4)


def test_the_penalty_is_differentiable_and_its_gradient_is_the_correction(module):
    # for one fixed batch, ∇(h G) equals h·(E M estimate)/P: heavy ball's P = 1/(1−β)
    indices = torch.arange(0, 40, 5)
    theta = THETA.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(module.penalty(theta, batch(indices), 1.0), theta)
    correction = module.correction(THETA, batch(indices))
    assert torch.allclose(grad, correction * (1 - 0.9), atol=1e-10)
    # and by central differences
    e = 1e-6
    fd = torch.stack(
        [
            (module.penalty(THETA + e * u, batch(indices), 1.0) - module.penalty(THETA - e * u, batch(indices), 1.0))
            / (2 * e)
            for u in torch.eye(3, dtype=torch.float64)
        ]
    )
    assert torch.allclose(grad, fd, atol=1e-6)


def test_a_scalar_loss_is_refused(module):
    with pytest.raises(ValueError, match="k >= 2 micro-batches"):
        module.penalty(THETA, lambda theta: per_example(theta).mean(), 0.1)


def test_memoryless_steps_with_micro_batch_losses(module):
    indices = torch.arange(0, 40, 4)
    w = torch.nn.Parameter(THETA.clone())
    opt = module.Memoryless([w], lr=0.001)
    opt.step(lambda: batch(indices)(w))
    with torch.no_grad():
        expected = THETA - 0.001 * module.memoryless(THETA, batch(indices), 0.001)
    assert torch.allclose(w.detach(), expected, atol=1e-12)
