"""Run by tests/test_cluster.py under torchrun (2 processes, gloo): hand-written loops' gradients under DDP.

Each case runs a loop the way old code writes it (plain `backward()`, networks called as
`net(x)` or from outside their forward) on this rank's half of a batch, with the networks driven
by `compat.loop.ddp.DataParallelHeld`, and compares every gradient at the optimizer's step with the
same loop run in this process on the whole batch (one process, no DDP). It also reports how many
parameters needed the step's own all-reduce: none where DDP's reducer can see the backward.
Writes <out>/cases_rank<R>.json: {case: {'max_error': float, 'fallback': int}}, and a control case
'outside_forward_unaveraged' (the step's average left out), whose error must be large.
"""

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compat.loop.ddp import DataParallelHeld  # noqa: E402

HALF = 8  # samples per rank


def nets(case):
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 5))
    discriminator = TwoHeads() if case in FIND_UNUSED else nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    return generator, discriminator


def batch(rank_slice):
    torch.manual_seed(1)
    x, z = torch.randn(2 * HALF, 5), torch.randn(2 * HALF, 3)
    return x[rank_slice], z[rank_slice]


def grads(*modules):
    return [p.grad.clone() if p.grad is not None else None for m in modules for p in m.parameters()]


# Each case: loop(G, D, x, z, step) runs the hand-written loop; `step(*modules)` is the optimizer step:
# it records the gradients of `modules` there (and under DDP first lets DataParallelHeld.before_step act).

def plain(G, D, x, z, step):
    loss = D(x).pow(2).mean()
    loss.backward()
    step(D)


def accumulation(G, D, x, z, step):
    """Three backward passes (one forward each) before one step: the gradients add up."""
    for part in (x[: len(x) // 2], x[len(x) // 2:], x):
        D(part).pow(2).mean().backward()
    step(D)


def gan(G, D, x, z, step):
    """D's step on real and detached fake; G's step through D, whose gradients from it are left unused."""
    fake = G(z)
    D.zero_grad()
    d_loss = (D(x) - 1).pow(2).mean() + D(fake.detach()).pow(2).mean()
    d_loss.backward()
    step(D)
    G.zero_grad()
    g_loss = (D(fake) - 1).pow(2).mean()
    g_loss.backward()
    step(G)


def retained_graph(G, D, x, z, step):
    """One forward, two backward passes through its graph: DDP reduces the first, the step averages the second."""
    out = D(x)
    out.pow(2).mean().backward(retain_graph=True)
    out.mean().backward()
    step(D)


def outside_forward(G, D, x, z, step):
    """A submodule called directly, not through the network's forward: DDP's reducer never hears of it."""
    D[0](x).pow(2).mean().backward()
    step(D)


def mixed(G, D, x, z, step):
    """D through its forward and a submodule of G directly, in one backward."""
    (D(G[0](z).tanh() @ torch.ones(8, 5)).pow(2).mean()).backward()
    step(G, D)


def outside_every_network(G, D, x, z, step):
    """A layer no held network contains, stepped with D, twice (its gradients are averaged at each step)."""
    torch.manual_seed(2)
    extra = nn.Linear(5, 1)
    for _ in range(2):
        D.zero_grad()
        extra.zero_grad()
        (D(x) + extra(x)).pow(2).mean().backward()
        step(D, extra)


class TwoHeads(nn.Module):
    """A network whose forward uses one of its two heads: the other's parameters get no gradient."""

    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Linear(5, 1), nn.Linear(5, 1)

    def forward(self, x):
        return self.used(x)


def unused_head(G, D, x, z, step):
    """Run with find_unused_parameters (strategy='ddp_find_unused_parameters_true'), twice: DDP is ready again."""
    for _ in range(2):
        D.zero_grad()
        D(x).pow(2).mean().backward()
        step(D)


CASES = {f.__name__: f for f in (plain, accumulation, gan, retained_graph, outside_forward, mixed,
                                                 outside_every_network, unused_head)}
FIND_UNUSED = {'unused_head'}


def reference(case):
    G, D = nets(case)
    x, z = batch(slice(None))
    recorded = []
    CASES[case](G, D, x, z, lambda *modules: recorded.append(grads(*modules)))
    return recorded


def distributed(case, rank, average=True):
    G, D = nets(case)
    held = DataParallelHeld([G, D], torch.device('cpu'), find_unused=case in FIND_UNUSED)
    held.training = True
    x, z = batch(slice(rank, None, 2))  # every other sample: a micro-batch's halves make the whole's
    recorded = []

    def step(*modules):
        optimizer = torch.optim.SGD([p for m in modules for p in m.parameters()], lr=0.0)
        if average:
            held.before_step(optimizer)
        recorded.append(grads(*modules))

    CASES[case](G, D, x, z, step)
    fallback = held.fallback_params
    held.detach()
    return recorded, fallback


def error(got, want):
    worst = 0.0
    for a_step, b_step in zip(got, want, strict=True):
        for a, b in zip(a_step, b_step, strict=True):
            if (a is None) != (b is None):
                return float('inf')
            if a is not None:
                worst = max(worst, float((a - b).abs().max()))
    return worst


def main():
    out = Path(sys.argv[1])
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    results = {}
    for case in CASES:
        got, fallback = distributed(case, rank)
        results[case] = {'max_error': error(got, reference(case)), 'fallback': fallback}
    # the control: without the step's average, the gradients DDP's reducer never saw differ between ranks
    got, _ = distributed('outside_forward', rank, average=False)
    results['outside_forward_unaveraged'] = {'max_error': error(got, reference('outside_forward')), 'fallback': 0}
    (out / f'cases_rank{rank}.tmp').write_text(json.dumps(results))
    os.replace(out / f'cases_rank{rank}.tmp', out / f'cases_rank{rank}.json')  # whole when it appears
    dist.destroy_process_group()


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
