"""The generated JAX module (api.md), run: against the NumPy module, under ``jax.jit``, on pytrees, through
``jax.grad``, and as an optax transformation against the NumPy memoryless map.

- every bundled program and the outside set, both regimes: ``memoryless`` (orders 0, 1), ``correction``,
  ``initial_state`` and ``penalty`` equal the NumPy module's to 1e-9 relative (float64), plain on an array
  and jitted on a two-leaf pytree; orders 2 and 3 for programs derived that far (Adam to 2: its order-3
  derivation alone takes minutes, issue of speed);
- ``jax.grad`` of ``penalty`` is ``h∇G`` with ``Ψ_1 = P ⊙ ∇G + remainder``;
- ``optimizer(h)`` driven by optax for a few steps is the NumPy map ``θ ← θ − h·memoryless(θ)`` (the
  finite regime counting n in its state), also inside ``optax.chain`` after a gradient clip;
- a loss jax cannot use is refused with a sentence.
"""

import numpy as np
import pytest
import sympy as sp
from conftest import BUNDLED, GOOD, HEAVY, NOT_STATIONARY, ROOT, derived, short_memory

import memcorr
from memcorr.algebra.atoms import G
from memcorr.algebra.evaluate import evaluate
from memcorr.losses import from_torch
from memcorr.printing.jax import JaxCodePrinter

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
torch = pytest.importorskip("torch")  # the NumPy side's loss is the same function through torch
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

FINITE_N = 7
H = 0.01
# RAdam's finite-n correction loses digits in float64 whatever evaluates it: a relative change of 1e-15
# in β₂ moves the NumPy module's own correction by 2e-3 (measured at the defaults, n = 7). The NumPy and
# torch modules round alike (the same vectorized sums); jax's loops round differently and show it.
RTOL = {("radam", "finite"): 1e-4}


def loss_fn(w):
    """Smooth and nonconvex, every coordinate coupled (the torch tests' loss, in jax.numpy)."""
    return jnp.sum(jnp.log(jnp.cosh(w - 0.3))) + 0.5 * jnp.sum(w[:-1] * w[1:]) ** 2 + 0.2 * jnp.sum(jnp.sin(3 * w))


def torch_loss(w):
    return (
        torch.sum(torch.log(torch.cosh(w - 0.3)))
        + 0.5 * torch.sum(w[:-1] * w[1:]) ** 2
        + 0.2 * torch.sum(torch.sin(3 * w))
    )


LOSS = from_torch(torch_loss)
THETA = np.array([0.4, -0.8, 1.1, 0.25])


def tree(w):
    """The vector as a two-leaf pytree, the way a model's parameters come."""
    return {"bias": w[2:], "weight": w[:2].reshape(1, 2)}


def tree_loss(params):
    return loss_fn(jnp.concatenate([params["weight"].reshape(-1), params["bias"]]))


def flat(params):
    return np.concatenate([np.asarray(params["weight"]).reshape(-1), np.asarray(params["bias"])])


def close(a, b, rtol=1e-9):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(a), initial=0.0)))


def cases():
    for path in BUNDLED + GOOD:
        for regime in ("stationary", "finite"):
            if not (regime == "stationary" and path.stem in NOT_STATIONARY):
                marks = [pytest.mark.slow] if regime == "finite" or path.stem in HEAVY else []
                yield pytest.param(path, regime, id=f"{path.stem}-{regime}", marks=marks)


def modules(path, regime, order=1):
    d = derived(path, regime=regime, order=order)
    return d, memcorr.load_module(d), memcorr.load_module(d, backend="jax")


def agree(numpy_module, jax_module, hyper, orders, rtol=1e-9):
    """Every function of the two modules at THETA at each of ``orders``: the JAX ones plain on an array, and
    jitted on a pytree in one compilation (``jax.jit`` compiles anew for every function it is given: one per
    function and order made this the suite's slowest file)."""

    def values(module, theta, loss):
        out = {"update": module.update(theta, loss, **hyper)}
        for r in orders:
            out[f"memoryless, order {r}"] = module.memoryless(theta, loss, H, order=r, **hyper)
            out[f"correction, order {r}"] = module.correction(theta, loss, order=r, **hyper)
            states = module.initial_state(theta, loss, H, order=r, **hyper)
            out |= {f"state {name}, order {r}": value for name, value in states.items()}
        return out

    expected = values(numpy_module, THETA, LOSS)
    plain = values(jax_module, jnp.asarray(THETA), loss_fn)
    jitted = jax.jit(lambda params: values(jax_module, params, tree_loss))(tree(jnp.asarray(THETA)))
    assert expected.keys() == plain.keys() == jitted.keys()
    for name, want in expected.items():
        assert close(want, plain[name], rtol), name
        assert close(want, flat(jitted[name]), rtol), f"{name}, jitted on a pytree"


@pytest.mark.parametrize("path, regime", list(cases()))
def test_jax_module_equals_numpy_module(path, regime):
    d, numpy_module, jax_module = modules(path, regime)
    hyper = short_memory(d) | ({"n": FINITE_N} if regime == "finite" else {})
    agree(numpy_module, jax_module, hyper, (0, 1), RTOL.get((path.stem, regime), 1e-9))
    theta = jnp.asarray(THETA)
    if d.perturbation.potential is None:
        with pytest.raises(ValueError, match="no potential"):
            jax_module.penalty(theta, loss_fn, H, **hyper)
        return
    expected = H * numpy_module.penalty(THETA, LOSS, **hyper)
    assert close(expected, jax.jit(lambda t: jax_module.penalty(t, loss_fn, H, **hyper))(theta))
    assert close(expected, jax_module.penalty(tree(theta), tree_loss, H, **hyper))


@pytest.mark.slow
@pytest.mark.parametrize("name, top", [("heavy_ball", 3), ("nesterov", 3), ("lion_softsign", 3), ("adam", 2)])
def test_higher_orders_equal_numpy(name, top):
    d, numpy_module, jax_module = modules(ROOT / "derivations" / f"{name}.opt", "stationary", order=top)
    agree(numpy_module, jax_module, short_memory(d), range(2, top + 1))


@pytest.mark.parametrize("path, regime", list(cases()))
def test_penalty_gradient_is_h_grad_G_and_gives_the_correction(path, regime):
    """``jax.grad`` of ``penalty``, divided by ``h``, with the perturbation's ``P`` and remainder."""
    d, numpy_module, jax_module = modules(path, regime)
    p = d.perturbation
    if p.potential is None:
        pytest.skip(f"{d.name} has no potential: {p.reason}")
    hyper = short_memory(d)
    kw = {"n": FINITE_N} if regime == "finite" else {}
    grad_G = np.asarray(jax.grad(lambda t: jax_module.penalty(t, loss_fn, H, **hyper, **kw))(jnp.asarray(THETA))) / H
    values = {d.model.params[k].symbol: v for k, v in hyper.items()} | ({d.model.n: FINITE_N} if kw else {})
    P = evaluate(p.preconditioner, LOSS, THETA, values)
    remainder = 0.0 if p.exact else evaluate(p.remainder, LOSS, THETA, values)
    psi1 = numpy_module.correction(THETA, LOSS, **hyper, **kw)
    assert close(psi1, P * grad_G + remainder, rtol=1e-7)
    if not p.exact:  # the remainder is what the potential leaves out: not zero here
        assert not close(psi1, P * grad_G, rtol=1e-7)


def numpy_run(numpy_module, hyper, steps, finite, h=H):
    theta, path = THETA.copy(), []
    for n in range(steps):
        theta = theta - h * numpy_module.memoryless(theta, LOSS, h, **hyper, **({"n": n} if finite else {}))
        path.append(theta)
    return path


def optax_run(tx, steps):
    params = tree(jnp.asarray(THETA))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(tree_loss)(params)
        updates, state = tx.update(grads, state, params, loss_fn=tree_loss)
        return optax.apply_updates(params, updates), state

    path = []
    for _ in range(steps):
        params, state = step(params, state)
        path.append(flat(params))
    return path, state


@pytest.mark.parametrize(
    "name, regime",
    [("heavy_ball", "stationary"), ("adamw", "stationary"), ("lion_softsign", "stationary"), ("adam", "finite")],
)
def test_optax_transformation_is_the_memoryless_map(name, regime):
    d, numpy_module, jax_module = modules(ROOT / "derivations" / f"{name}.opt", regime)
    hyper = short_memory(d)
    expected = numpy_run(numpy_module, hyper, 4, regime == "finite")
    path, state = optax_run(jax_module.optimizer(H, **hyper), 4)
    assert int(state.count) == 4
    for want, got in zip(expected, path):
        assert close(want, got)
    # in a chain after a clip that does not act: the same steps; after one that does: not
    loose, _ = optax_run(optax.chain(optax.clip_by_global_norm(1e6), jax_module.optimizer(H, **hyper)), 4)
    assert all(close(want, got) for want, got in zip(expected, loose))
    tight, _ = optax_run(optax.chain(optax.clip_by_global_norm(1e-3), jax_module.optimizer(H, **hyper)), 4)
    assert not close(expected[-1], tight[-1], rtol=1e-4)


def test_a_loss_jax_cannot_use_is_refused_with_a_sentence():
    jax_module = memcorr.load_module(derived(ROOT / "derivations" / "heavy_ball.opt"), backend="jax")
    theta = jnp.asarray(THETA)
    with pytest.raises(TypeError, match="must return a scalar"):
        jax_module.update(theta, lambda w: w**2)
    with pytest.raises(TypeError, match="not differentiable by jax"):
        jax_module.update(theta, lambda w: float(np.sum(np.asarray(w) ** 2)))
    with pytest.raises(TypeError, match="floating-point"):
        jax_module.update(theta, lambda w: jnp.sum(w > 0))
    with pytest.raises(TypeError, match="needs the parameters and the loss"):
        tx = jax_module.optimizer(H)
        tx.update(theta, tx.init(theta))


def test_random_batches_equal_the_torch_module_on_the_same_micro_batches():
    """The noise estimator from micro-batch losses: the JAX module and the torch module agree."""
    d = derived(ROOT / "derivations" / "heavy_ball.opt", batches="random")
    jax_module, torch_module = memcorr.load_module(d, backend="jax"), memcorr.load_module(d, backend="torch")
    shifts = np.array([[0.1, -0.2, 0.3, 0.0], [-0.3, 0.1, 0.0, 0.2], [0.2, 0.1, -0.3, -0.2]])

    def jax_losses(w):
        return jnp.stack([loss_fn(w + s) + jnp.sum(s * w**2) for s in jnp.asarray(shifts)])

    def torch_losses(w):
        return torch.stack([torch_loss(w + s) + torch.sum(s * w**2) for s in torch.tensor(shifts)])

    hyper = short_memory(d)
    theta = jnp.asarray(THETA)
    for function in ("update", "correction"):
        want = getattr(torch_module, function)(torch.tensor(THETA), torch_losses, **hyper).numpy()
        assert close(want, getattr(jax_module, function)(theta, jax_losses, **hyper)), function
    want = torch_module.penalty(torch.tensor(THETA), torch_losses, H, **hyper).item()
    assert close(want, jax.jit(lambda t: jax_module.penalty(t, jax_losses, H, **hyper))(theta))
    with pytest.raises(ValueError, match="micro-batches"):
        jax_module.update(theta, loss_fn)


def test_a_sum_inside_another_sums_summand_has_a_function_of_its_own():
    """Each outermost sum over past steps is printed as a function (``_sumK``); one inside another's summand
    gets the next name, not its enclosing sum's, and the two together compute the double sum."""
    n, beta = sp.Symbol("n", integer=True, nonnegative=True), sp.Symbol("beta", positive=True)
    u, v = sp.Dummy("u", integer=True, nonnegative=True), sp.Dummy("v", integer=True, nonnegative=True)
    inner = sp.Sum(G * beta**v, (v, 0, n - 1))
    outer = sp.Sum(sp.sqrt(inner**2 + u), (u, 0, n - 1))
    printer = JaxCodePrinter({}, "theta, L, n, beta")
    call = printer.doprint(outer)
    names = [name for name, _ in printer.helpers.values()]
    assert len(names) == len(set(names)) == 2, names
    space = {"jax": jax}
    for _, definition in printer.helpers.values():
        exec(definition, space)
    g = jnp.asarray([0.3, -1.2])
    got = eval(call, space, {"theta": g, "L": None, "n": 5, "beta": 0.7, "g": g})
    want = sum(np.sqrt((np.asarray(g) * sum(0.7**k for k in range(5))) ** 2 + j) for j in range(5))
    assert close(want, got)
