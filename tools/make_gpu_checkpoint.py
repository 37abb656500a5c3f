"""Write tests/data/gpu_written_ck.pkl: a real checkpoint saved by a trainer on a CUDA GPU.

Run on a GPU machine (`python tools/make_gpu_checkpoint.py OUT`); the tests load the file on the
CPU to prove that GPU-written checkpoints load on CPU-only machines.
"""

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'tests' / 'data')]

from lernomatic.train.trainer import Trainer  # noqa: E402

from extra_nets import TinyWithArgs  # noqa: E402


def main(out: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    trainer = Trainer(TinyWithArgs(num_in=4, num_out=2), train_dataset=data, num_epochs=1, batch_size=16,
                      device_id=0, num_workers=0, verbose=False, save_every=0, save_hist=False, logger=False,
                      learning_rate=0.01)
    trainer.train()
    trainer.save_checkpoint(out)
    saved = torch.load(out, map_location=None)
    devices = {t.device.type for t in saved['model']['model_state_dict'].values()}
    print('model tensors saved on', devices, '; optimizer exp_avg on', saved['optim']['state'][0]['exp_avg'].device)


if __name__ == '__main__':
    main(sys.argv[1])
