"""`train(config)`: checks, the run-dir decision, then the single-host or multi-worker loop."""

import contextlib
import json
import os

import keras
import tensorflow as tf

from keras_shiftinv import data
from keras_shiftinv import provenance
from keras_shiftinv.errors import UsageError
from keras_shiftinv.saving import read_metadata
from keras_shiftinv.training.run_dir import RunDir


def train(config, overwrite=False):
    """Trains per `config` into `config.model_dir` (docs/design.md, "Run directory").

    A model dir belongs to one run: rerunning the same settings resumes after
    the last finished epoch, or returns at once if the run is finished; other
    settings are a one-line `UsageError` unless `overwrite`.

    Args:
        config: a `TrainConfig`.
        overwrite: bool, discard a different run found in the model dir.

    Returns:
        dict with `final_model` (path of `final.keras`; None on non-chief
        workers), `model` (the trained model; None when the run was already
        finished), `already_finished` and `train_images_per_second`.
    """
    config.validate()
    multi_worker = is_multi_worker()
    if multi_worker and keras.config.backend() != "tensorflow":
        raise UsageError(f"multi-worker training (TF_CONFIG) needs KERAS_BACKEND=tensorflow; it is "
                         f"{keras.config.backend()}")
    if config.cpu_replicas > 1 and keras.config.backend() == "tensorflow":
        split_cpu(config.cpu_replicas)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if multi_worker else single_host_strategy(config)
    chief = is_chief(strategy) if multi_worker else True
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(f"`batch_size={config.batch_size}` is not divisible by the {replicas} replicas; "
                         f"use a multiple of {replicas}")
    info, val_info = describe_data(config, validation=config.validation and not multi_worker)
    steps = info.num_examples // config.batch_size
    if steps < 1:
        raise UsageError(f"`batch_size={config.batch_size}` is larger than the {info.num_examples} training "
                         "examples: not one full batch per epoch; use a smaller `batch_size`")
    run = RunDir(config.model_dir)
    # Versions are part of the run: a checkpoint of other versions is not resumed (docs/design.md,
    # "Reproducibility").
    settings = {**config.run_settings(), "class_names": list(info.class_names), "versions": provenance.versions()}
    if run.decide(settings, overwrite) == "finished":  # before the lock: touch nothing
        final = run.file("final.keras")
        print(f"{config.model_dir}: already finished ({final}); nothing to do", flush=True)
        return {"final_model": final, "model": None, "already_finished": True,
                "train_images_per_second": read_metadata(final).get("train_images_per_second")}
    with run.lock() if chief else contextlib.nullcontext():
        decision = run.decide(settings, overwrite)  # again: another process may have finished it
        if decision == "finished":
            raise UsageError(f"{config.model_dir} was finished by another process meanwhile")
        if chief:
            run.remove_temporaries()
            if decision == "new":
                run.clear()
                run.write_config({
                    **config.to_dict(), **settings, "num_classes": info.num_classes,
                    "train_examples": info.num_examples, "steps_per_epoch": steps, "replicas": replicas,
                    "peak_learning_rate": config.peak_learning_rate,
                    "strategy": "MultiWorkerMirroredStrategy" if multi_worker else strategy_name(strategy),
                })
        metadata = {"class_names": list(info.class_names), "dataset": config.dataset,
                    "image_size": config.image_size, "method": config.method, "config": config.to_dict()}
        if multi_worker:
            from keras_shiftinv.training.multi_worker import train_multi_worker

            result = train_multi_worker(config, run, decision == "resume", info, steps, strategy, chief, metadata)
        else:
            from keras_shiftinv.training.fit import train_single_host

            result = train_single_host(config, run, decision == "resume", info, val_info, steps, strategy,
                                       metadata)
    return {**result, "already_finished": False}


def describe_data(config, validation):
    """The training split's `DatasetInfo`, and the validation split's (or None).

    Training and validation must have the same classes in the same order.
    """
    where = {"data_dir": config.data_dir, "manual_dir": config.manual_dir}
    info = data.describe(config.dataset, "train", image_size=config.image_size,
                         max_examples=config.max_train_examples, **where)
    if not validation or not data.has_split(config.dataset, "validation", **where):
        return info, None
    val_info = data.describe(config.dataset, "validation", image_size=config.image_size,
                             max_examples=config.max_eval_examples, **where)
    if val_info.class_names != info.class_names:
        only_train = sorted(set(info.class_names) - set(val_info.class_names))[:3]
        only_val = sorted(set(val_info.class_names) - set(info.class_names))[:3]
        raise UsageError(
            f"the validation classes differ from the training classes ({info.num_classes} in train, "
            f"{val_info.num_classes} in validation; only in train: {only_train}, only in validation: "
            f"{only_val}); give both splits the same class folders"
        )
    return info, val_info


def split_cpu(n):
    """Splits the CPU into `n` logical devices (to run the multi-replica path on CPU)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def single_host_strategy(config):
    if keras.config.backend() == "jax":  # DataParallel over the visible devices (docs/backends.md)
        from keras_shiftinv.training.fit import JaxDataParallel

        if config.cpu_replicas > 1:
            raise UsageError("`cpu_replicas` splits the CPU for TensorFlow; with KERAS_BACKEND=jax set "
                             "XLA_FLAGS=--xla_force_host_platform_device_count=N instead")
        return JaxDataParallel(keras.distribution.list_devices())
    if config.cpu_replicas > 1:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][: config.cpu_replicas]
        return tf.distribute.MirroredStrategy(devices)
    if len(tf.config.list_physical_devices("GPU")) >= 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def strategy_name(strategy):
    return getattr(strategy, "name", None) if keras.config.backend() == "jax" else type(strategy).__name__


def is_multi_worker():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except (ValueError, AttributeError):
        raise UsageError("TF_CONFIG is not a JSON object with a 'cluster' entry") from None
    return sum(len(v) for v in cluster.values()) > 1


def is_chief(strategy):
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
