# Load a checkpoint in a fresh process (only lernomatic imported) and classify some images.
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test'))
import data_util  # noqa: E402

from lernomatic.infer import inferrer  # noqa: E402

if __name__ == '__main__':
    inf = inferrer.Inferrer(device_id=-1)
    inf.load_model(sys.argv[1])
    x, y = data_util.images(32, seed=1).tensors
    inf.get_model().set_eval()
    with torch.no_grad():
        pred = inf.forward(x).argmax(dim=1)
    print('model', inf.get_model().get_model_name(), 'module', inf.get_model().get_module_name(),
          'channels', inf.get_model().net.conv1.out_channels, 'correct', int((pred == y).sum()))
