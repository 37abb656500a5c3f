"""The hand-written training loop the benchmarks time: an old-style `train_epoch` override."""

from lernomatic.train.trainer import Trainer


class HandWrittenTrainer(Trainer):
    """Forward, loss, zero_grad, backward, step per batch: what most Lernomatic subclasses wrote."""

    def train_epoch(self) -> None:
        for data, target in self.train_loader:
            data, target = data.to(self.device), target.to(self.device)
            loss = self.criterion(self.model.forward(data), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
