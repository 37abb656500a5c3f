"""A classifier trainer that pops its own kwargs, passes the rest to the base (some nobody uses), and has
its own load_checkpoint, as the zoo's ResNet / CIFAR trainers did."""

from lernomatic.train import trainer


class CifarLikeTrainer(trainer.Trainer):
    def __init__(self, model=None, **kwargs):
        self.data_dir = kwargs.pop('data_dir', 'data')
        self.augment = kwargs.pop('augment', False)
        super(CifarLikeTrainer, self).__init__(model, **kwargs)

    def __repr__(self):
        return 'CifarLikeTrainer'

    def load_checkpoint(self, fname):
        super(CifarLikeTrainer, self).load_checkpoint(fname)
        self.loaded_from = fname

    def get_trainer_params(self):
        params = super(CifarLikeTrainer, self).get_trainer_params()
        params['augment'] = self.augment
        return params

    def set_trainer_params(self, params):
        super(CifarLikeTrainer, self).set_trainer_params(params)
        self.augment = params['augment']
