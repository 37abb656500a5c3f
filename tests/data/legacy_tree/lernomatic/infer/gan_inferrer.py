"""Generates images from a DCGAN checkpoint: an Inferrer subclass as the zoo wrote them."""

import torch

from lernomatic.infer import inferrer


class DCGANInferrer(inferrer.Inferrer):
    def __init__(self, model=None, **kwargs):
        self.zvec_dim = kwargs.pop('zvec_dim', 8)
        super(DCGANInferrer, self).__init__(model, **kwargs)

    def __repr__(self):
        return 'DCGANInferrer'

    def load_model(self, fname):
        super(DCGANInferrer, self).load_model(fname, model_key='generator')

    def forward(self, num_images):
        self.model.set_eval()
        noise = torch.randn(num_images, self.zvec_dim, device=self.device)
        with torch.no_grad():
            return self.model.forward(noise)
