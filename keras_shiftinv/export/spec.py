"""What an export needs to know besides the weights: classes, preprocessing, size."""

import dataclasses

import keras

from keras_shiftinv.data.transforms import MAX_PIXELS
from keras_shiftinv.export.preprocessing import resolve


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """The serving contract of one model (docs/design.md, "Export and serving").

    Attributes:
        class_names: tuple of str, index = class.
        preprocessing: one of `preprocessing.PREPROCESSINGS`.
        image_size: int, the side of the model's (cropped) input.
        from_logits: whether the model outputs logits (else probabilities).
        max_pixels: int, the largest image (width x height) that
            `serving_default` decodes.
    """

    class_names: tuple
    preprocessing: str
    image_size: int
    from_logits: bool = True
    max_pixels: int = MAX_PIXELS

    @property
    def top_k(self):
        return min(5, len(self.class_names))

    @classmethod
    def for_model(cls, model, metadata=None, *, class_names=None, preprocessing=None, image_size=None,
                  from_logits=True, max_pixels=MAX_PIXELS):
        """The spec of `model`: explicit arguments first, then its stored metadata.

        Args:
            model: a built `keras.Model` with one `(B, H, W, 3)` image input.
            metadata: the dict `saving.read_metadata` returns, or None.
            class_names: sequence of str, or None for the metadata's (else
                `"0".."K-1"`).
            preprocessing: a name of `preprocessing.PREPROCESSINGS`, or None
                for the metadata's dataset (else `"imagenet"`).
            image_size: int, or None for the metadata's (else the model's
                static input side).
            from_logits: whether the model outputs logits.
            max_pixels: positive int, the pixel budget of `serving_default`.
        """
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
        metadata = metadata or {}
        input_shape = tuple(model.inputs[0].shape) if model.inputs else None
        if input_shape is None or len(input_shape) != 4 or input_shape[-1] != 3:
            raise ValueError(
                "`model` must have one RGB image input (batch, height, width, 3). "
                f"Received: input_shape={input_shape}"
            )
        num_classes = int(model.outputs[0].shape[-1])
        names = class_names if class_names is not None else metadata.get("class_names")
        names = tuple(str(n) for n in names) if names is not None else tuple(map(str, range(num_classes)))
        if len(names) != num_classes:
            raise ValueError(
                f"The model has {num_classes} classes but {len(names)} class names were given. "
                f"Received: class_names={list(names)}"
            )
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"`max_pixels` must be a positive integer. Received: max_pixels={max_pixels!r}")
        side = image_size or metadata.get("image_size") or input_shape[1]
        if side is None:
            raise ValueError(
                "The model's input side is unknown (its input shape has no height and width and its metadata "
                f"has no image_size); pass image_size. Received: image_size={image_size}, input_shape={input_shape}"
            )
        if input_shape[1] not in (None, side) or input_shape[2] not in (None, side):
            source = "the image_size argument" if image_size else "the image_size in the model's metadata"
            raise ValueError(
                f"{source} ({side}) differs from the model's input side ({input_shape[1]}x{input_shape[2]}). "
                f"Received: image_size={side}, input_shape={input_shape}"
            )
        prep = resolve(preprocessing, metadata.get("dataset"))
        return cls(names, prep, int(side), bool(from_logits), max_pixels)
