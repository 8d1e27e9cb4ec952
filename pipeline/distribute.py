"""Training on several devices: Keras 3's DataParallel on the JAX backend (`train.distribution`).

- `none`: one device, as before.
- `data_parallel`: the model is replicated on every local device (every GPU, or the CPU devices that
  XLA_FLAGS=--xla_force_host_platform_device_count=N makes) and each batch is split across them; gradients
  are averaged over the whole batch, so `train.batch_size` stays the global batch and the learning rate
  means what it meant on one device. Needs KERAS_BACKEND=jax.
- `auto`: data_parallel when the backend is JAX and it sees more than one device, else none.

Several hosts: set KERAS_DISTRIBUTION_JOB_ADDRESSES (every host's address:port, comma-separated, the
first is the coordinator), KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID (0..N-1)
and run the stage on each host; keras.distribution.initialize() joins them before the devices are listed,
and each host feeds its own slice of every global batch.

The batch must divide by the device count, which a last partial batch rarely does (Keras then fails):
`DivisibleBatches` trims a batch to the largest multiple of the device count, i.e. drops at most
devices - 1 samples of the epoch's last batch. Dropping, not padding: a padded copy would count twice in
the gradient and in the metrics (Keras' compiled metrics ignore a zero sample weight). In training the
dropped samples are random ones each epoch (the order is reshuffled); validation loses the same few files
each epoch; evaluate runs on one device and scores every test file.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from pipeline.errors import ParamsError, UserError

log = logging.getLogger("pipeline.distribute")

MODES = ("auto", "none", "data_parallel")
MULTI_HOST_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"


def check(train_section: dict) -> str:
    """The `train.distribution` value, checked (TrainConfig.from_params calls this)."""
    mode = train_section.get("distribution", "auto")
    if mode is None or mode is False:  # YAML `no` / null read as "none"
        mode = "none"
    if mode not in MODES:
        raise ParamsError("train.distribution", f"{mode!r} is not one of: {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class Devices:
    count: int  # devices the global batch is split across (1 = no distribution)
    processes: int = 1  # hosts taking part
    process_id: int = 0
    description: str = "one device"


def configure(mode: str, batch_size: int) -> Devices:
    """Set Keras' global distribution for `mode` (before the model is built); returns what was set up."""
    import keras

    backend = keras.backend.backend()
    if mode == "none":
        return Devices(1)
    if backend != "jax":
        if mode == "data_parallel":
            raise UserError(f"train.distribution: data_parallel needs the JAX backend (KERAS_BACKEND=jax), "
                            f"this run uses {backend}")
        return Devices(1)
    if os.environ.get(MULTI_HOST_ENV):
        keras.distribution.initialize()  # reads the KERAS_DISTRIBUTION_* variables
    import jax

    devices = keras.distribution.list_devices()
    if len(devices) < 2 and mode == "auto":
        return Devices(1)
    if batch_size % len(devices):
        raise ParamsError("train.batch_size", f"{batch_size} does not divide across the {len(devices)} devices "
                                              f"of train.distribution: data_parallel; use a multiple of {len(devices)}")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    hosts = jax.process_count()
    text = (f"data parallel over {len(devices)} devices ({jax.devices()[0].platform}"
            + (f", {hosts} hosts" if hosts > 1 else "") + f"), {batch_size // len(devices)} samples per device")
    log.info("%s", text)
    return Devices(len(devices), hosts, jax.process_index(), text)


def kept_in_batch(size: int, devices: Devices) -> int:
    """How many samples of a batch of `size` are used: the largest multiple of the device count."""
    return size - size % devices.count


def current() -> Devices:
    """The distribution `configure` set up (Keras keeps it globally); one device when none is set."""
    import keras

    dist = keras.distribution.distribution()
    if dist is None:
        return Devices(1)
    import jax

    return Devices(int(dist.device_mesh.devices.size), jax.process_count(), jax.process_index())


def divisible(sequence, n_samples: int, batch_size: int, devices: Devices | None = None):
    """`sequence` (a PyDataset of batch_size batches over n_samples) with every batch divisible by the
    device count, and on several hosts only this host's slice of each batch; unchanged on one device.
    `devices` defaults to the current distribution."""
    devices = current() if devices is None else devices
    if devices.count == 1 and devices.processes == 1:
        return sequence
    import keras

    n_batches = len(sequence)
    last = n_samples - (n_batches - 1) * batch_size
    if kept_in_batch(last, devices) == 0:  # fewer samples than devices left over: drop that batch
        n_batches -= 1
    if n_batches == 0:
        raise UserError(f"{n_samples} samples cannot be split across {devices.count} devices")

    class DivisibleBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=sequence.workers, max_queue_size=sequence.max_queue_size)

        def __len__(self):
            return n_batches

        def __getitem__(self, index):
            batch = sequence[index]
            keep = kept_in_batch(len(batch[0]), devices)
            per_host = keep // devices.processes
            start = devices.process_id * per_host
            return tuple(part[start:start + per_host] for part in batch)

        def on_epoch_end(self):
            sequence.on_epoch_end()

    return DivisibleBatches()
